/**
 * mailhold benchmarks (issue 6): `npm run bench`.
 *
 *   npm run bench                          every benchmark, PGlite and PostgreSQL, 3 runs each
 *   npm run bench -- --only intake,latency one or more of: intake latency bigmail release page start
 *   npm run bench -- --runs 1 --db postgres
 *
 * Each benchmark starts its own fresh mailhold from build/index.js (built first with
 * `npx vite build` if build/ is missing or older than src/), on a fresh PGlite DATA_DIR and on a
 * fresh PostgreSQL database (created on BENCH_DATABASE_URL, default
 * postgres://postgres@127.0.0.1:5432/test, and dropped afterwards). Clients and the upstream sink
 * run in their own processes (bench/smtp-client.mjs, bench/sink.mjs).
 *
 * Needs: PostgreSQL on 127.0.0.1:5432; root (peer-accept.sh installs and runs Postfix as the
 * reference); python3; /usr/bin/chromium (CHROMIUM_PATH to override).
 * Prints a table of medians and writes every figure of every run, with the machine, to
 * bench-results/latest.json. BENCH_CPU_PROF=<dir> makes each server write a V8 CPU profile.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildEntry, root } from '../test/helpers/server.js';
import { bigMail } from './big-mail.js';
import { intake } from './intake.js';
import { latency } from './latency.js';
import { page } from './page.js';
import { release } from './release.js';
import { start } from './start.js';
import { median } from './stats.js';
import { ensureBuild, type DbKind } from './target.js';
import type { Benchmark, Figures } from './types.js';

const ALL: Benchmark[] = [intake, latency, bigMail, release, page, start];

function option(name: string): string | undefined {
  const args = process.argv.slice(2);
  const i = args.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (i === -1) return undefined;
  return args[i]!.includes('=') ? args[i]!.split('=').slice(1).join('=') : args[i + 1];
}

const only = option('only')?.split(',').map((s) => s.trim());
const unknown = only?.filter((n) => !ALL.some((b) => b.name === n)) ?? [];
if (unknown.length) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; choose from ${ALL.map((b) => b.name).join(', ')}`);
  process.exit(2);
}
const runs = Number(option('runs') ?? 3);
const dbs = (option('db')?.split(',') ?? ['pglite', 'postgres']) as DbKind[];
const chosen = ALL.filter((b) => !only || only.includes(b.name));

/** results[bench][db] = one Figures per run, or an error message. */
type Outcome = Figures | { error: string };
const results: Record<string, Record<string, Outcome[]>> = {};

ensureBuild();
const startedAt = new Date();
/** What was measured: the commit, whether src/ had uncommitted changes, when build/ was made. */
const git = (...args: string[]) => {
  try {
    return execFileSync('git', args, { cwd: root, encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
};
const code = { commit: git('rev-parse', '--short', 'HEAD'), srcChanged: git('status', '--porcelain', '--', 'src') !== '', built: statSync(buildEntry).mtime.toISOString() };
for (let run = 1; run <= runs; run++) {
  for (const bench of chosen) {
    for (const db of dbs) {
      const t = Date.now();
      process.stdout.write(`run ${run}/${runs} ${bench.name} on ${db}... `);
      let outcome: Outcome;
      try {
        outcome = await bench.run(db);
        console.log(`${((Date.now() - t) / 1000).toFixed(0)} s ${JSON.stringify(outcome)}`);
      } catch (err) {
        outcome = { error: (err as Error).message.split('\n')[0]!.slice(0, 300) };
        console.log(`error: ${outcome.error}`);
      }
      ((results[bench.name] ??= {})[db] ??= []).push(outcome);
    }
  }
}

/** The median of each numeric figure over the runs that worked; booleans: true only if all were. */
function summarise(outcomes: Outcome[]): Figures | { error: string } {
  const ok = outcomes.filter((o): o is Figures => !('error' in o));
  if (ok.length === 0) return { error: String((outcomes[0] as { error: string } | undefined)?.error ?? 'not run') };
  const out: Figures = {};
  for (const key of Object.keys(ok[0]!)) {
    const values = ok.map((o) => o[key]);
    if (values.every((v) => typeof v === 'number')) out[key] = median(values as number[]);
    else if (values.every((v) => typeof v === 'boolean')) out[key] = values.every(Boolean);
    else out[key] = values[0] ?? null;
  }
  return out;
}

const medians: Record<string, Record<string, Figures | { error: string }>> = {};
for (const bench of chosen) for (const db of dbs) (medians[bench.name] ??= {})[db] = summarise(results[bench.name]?.[db] ?? []);

// The table: one row per target, a column per database.
const rows: string[][] = [['benchmark', 'target', ...dbs.map((d) => (d === 'pglite' ? 'PGlite' : 'PostgreSQL')), 'result']];
const show = (v: unknown, unit = '') => (typeof v === 'boolean' ? (v ? 'yes' : 'NO') : typeof v === 'number' ? `${v}${unit && unit !== '×' ? ` ${unit}` : unit}` : String(v ?? '—'));
for (const bench of chosen) {
  for (const m of bench.metrics) {
    const verdicts: string[] = [];
    const cells = dbs.map((db) => {
      const s = medians[bench.name]![db]!;
      if ('error' in s && typeof s.error === 'string' && Object.keys(s).length === 1) {
        verdicts.push(`${db}: error`);
        return `error: ${s.error.slice(0, 60)}`;
      }
      const v = (s as Figures)[m.key];
      if (m.target && (typeof v === 'number' || typeof v === 'boolean')) verdicts.push(`${db}: ${m.pass(v) ? 'pass' : 'MISS'}`);
      return show(v, m.unit);
    });
    rows.push([m.label, m.target, ...cells, m.target ? verdicts.join(', ') : '']);
  }
}
const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join(' | ');
console.log(`\nmedians over ${runs} run(s)\n${line(rows[0]!)}\n${widths.map((w) => '-'.repeat(w)).join('-|-')}`);
for (const r of rows.slice(1)) console.log(line(r));

const machine = {
  cpu: os.cpus()[0]?.model ?? 'unknown',
  cores: os.cpus().length,
  memoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
  node: process.version,
  platform: `${os.type()} ${os.release()} ${os.arch()}`,
  date: startedAt.toISOString(),
  finished: new Date().toISOString(),
};
const outDir = path.join(root, 'bench-results');
mkdirSync(outDir, { recursive: true });
writeFileSync(path.join(outDir, 'latest.json'), `${JSON.stringify({ machine, code, runs, dbs, medians, results }, null, 2)}\n`);
console.log(`\nfigures: bench-results/latest.json (${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, node ${machine.node})`);
// A helper process or socket a failed benchmark left behind must not keep the harness alive.
process.exit(0);
