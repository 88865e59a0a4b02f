// Builds the single self-contained binary dist/regauth (bun build --compile).
import pkg from "../package.json" with { type: "json" };

const target = process.env.REGAUTH_TARGET; // e.g. bun-linux-x64-baseline, bun-linux-arm64
const outfile = process.env.REGAUTH_OUTFILE ?? "dist/regauth";
const args = [
  "build",
  "src/main.ts",
  "--compile",
  "--minify-syntax",
  "--minify-whitespace",
  "--sourcemap=none",
  `--define=REGAUTH_VERSION=${JSON.stringify(pkg.version)}`,
  // An appliance reads only its own config file, never a stray .env or bunfig.toml at run time.
  "--no-compile-autoload-dotenv",
  "--no-compile-autoload-bunfig",
  `--outfile=${outfile}`,
  ...(target ? [`--target=${target}`] : []),
];
const proc = Bun.spawnSync(["bun", ...args], { stdout: "inherit", stderr: "inherit" });
process.exit(proc.exitCode ?? 1);
