// Runs benchKernels() of one wasm build in this Node process and prints the report JSON on
// stdout. Spawned by run.mjs, one process per build variant (a fresh engine for each).
//
//   node node-run.mjs <variant> <config-json>
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const [variant, config = '{}'] = process.argv.slice(2);
// BENCH_CLOCK=cpu times with this process's CPU time instead of wall time: on a machine shared
// with other work it removes most of the interference, which helps comparing kernels (the
// figures then mean "GMAC per CPU-second"). The wasm import calls performance.now() each time.
if (process.env.BENCH_CLOCK === 'cpu') {
  performance.now = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
}
const dist = join(dirname(fileURLToPath(import.meta.url)), '..', 'pkg', 'dist', variant);
const mod = await import(join(dist, 'anybit.js'));
await mod.default({ module_or_path: await readFile(join(dist, 'anybit_bg.wasm')) });
if (typeof mod.benchKernels !== 'function') throw new Error(`pkg/dist/${variant} has no benchKernels export`);
process.stdout.write(mod.benchKernels(config));
