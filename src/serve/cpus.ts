/**
 * How many CPUs this process may use: the default of `server.workers` (issue 17). Bun's
 * navigator.hardwareConcurrency follows the affinity mask (sched_getaffinity, so `taskset` and
 * systemd's CPUAffinity=), and a cgroup v2 quota (systemd's CPUQuota=, `docker run --cpus`) caps it
 * further: a quota of 150% is two workers, not the host's 16.
 */
import { readFileSync } from "node:fs";

export function usableCpuCount(cgroupCpuMax = readCgroupCpuMax()): number {
  const affinity = Math.max(1, navigator.hardwareConcurrency || 1);
  const quota = cpuQuota(cgroupCpuMax);
  return quota === null ? affinity : Math.max(1, Math.min(affinity, Math.ceil(quota)));
}

/** `cpu.max` is "QUOTA PERIOD" in microseconds, or "max PERIOD" without a quota; null: no quota. */
export function cpuQuota(cpuMax: string | null): number | null {
  const [quota, period] = (cpuMax ?? "").trim().split(/\s+/);
  const quotaUs = Number(quota);
  const periodUs = Number(period);
  if (!Number.isFinite(quotaUs) || !Number.isFinite(periodUs) || quotaUs <= 0 || periodUs <= 0) return null;
  return quotaUs / periodUs;
}

function readCgroupCpuMax(): string | null {
  try {
    // cgroup v2: the process's own group, as /proc/self/cgroup names it ("0::/system.slice/x").
    const group = readFileSync("/proc/self/cgroup", "utf8").match(/^0::(.*)$/m)?.[1];
    return group === undefined ? null : readFileSync(`/sys/fs/cgroup${group}/cpu.max`, "utf8");
  } catch {
    return null;
  }
}
