/**
 * Which of the server's processes answered (issue 17): /healthz says `worker` (0 the supervisor,
 * 1..N-1 the others) when there is more than one, so operators and tests can see the kernel
 * spread connections over all of them. Absent with one process, as before.
 */
let label: number | null = null;

export function setWorkerLabel(id: number): void {
  label = id;
}

export function workerLabel(): { worker?: number } {
  return label === null ? {} : { worker: label };
}
