/**
 * Summarises V8 CPU profiles (from BENCH_CPU_PROF=<dir> npm run bench ...): the functions with
 * the most self time, and self time by package (node_modules/<name>, node internals, mailhold).
 *
 *   npx tsx bench/profile-summary.ts <file.cpuprofile | dir> [top=25]
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

interface Node {
  id: number;
  children?: number[];
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: Node[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const [where = '.', topArg = '25'] = process.argv.slice(2);
const files = statSync(where).isDirectory() ? readdirSync(where).filter((f) => f.endsWith('.cpuprofile')).map((f) => path.join(where, f)) : [where];

function owner(url: string): string {
  if (!url) return '(native, gc, program)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  if (url.startsWith('node:')) return 'node internals';
  if (url.includes('/build/')) return 'mailhold (build/)';
  return url;
}

for (const file of files) {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  p.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
  // Idle time is left out: the shares are of the time the process was busy.
  let idle = 0;
  for (const [id, us] of self) if (byId.get(id)!.callFrame.functionName === '(idle)') (idle += us), self.delete(id);
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const fn = new Map<string, number>();
  const pkg = new Map<string, number>();
  for (const [id, us] of self) {
    const n = byId.get(id)!;
    const f = n.callFrame;
    const name = `${f.functionName || '(anonymous)'} ${f.url ? `${f.url.replace(/^.*\/(node_modules|build)\//, '$1/')}:${f.lineNumber + 1}` : ''}`.trim();
    fn.set(name, (fn.get(name) ?? 0) + us);
    pkg.set(owner(f.url), (pkg.get(owner(f.url)) ?? 0) + us);
  }
  const pct = (us: number) => `${((100 * us) / total).toFixed(1).padStart(5)}%`;
  console.log(`\n${path.basename(file)}: ${(total / 1e6).toFixed(1)} s busy, ${(idle / 1e6).toFixed(1)} s idle`);
  console.log('  self time by package:');
  for (const [k, v] of [...pkg].sort((a, b) => b[1] - a[1]).slice(0, 12)) console.log(`  ${pct(v)}  ${k}`);
  console.log('  top functions (self):');
  for (const [k, v] of [...fn].sort((a, b) => b[1] - a[1]).slice(0, Number(topArg))) console.log(`  ${pct(v)}  ${k}`);
  // Where the top three native functions are called from (a few frames up, within mailhold or a package).
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const label = (n: Node) => `${n.callFrame.functionName || '(anonymous)'}${n.callFrame.url ? ` ${n.callFrame.url.replace(/^.*\/(node_modules|build)\//, '$1/')}:${n.callFrame.lineNumber + 1}` : ''}`;
  for (const [k] of [...fn].sort((a, b) => b[1] - a[1]).slice(0, 3)) {
    const stacks = new Map<string, number>();
    for (const [id, us] of self) {
      const n = byId.get(id)!;
      if (!k.startsWith(n.callFrame.functionName || '(anonymous)')) continue;
      const chain: string[] = [];
      for (let up = parent.get(id); up !== undefined && chain.length < 6; up = parent.get(up)) {
        const f = byId.get(up)!;
        if (f.callFrame.url && !f.callFrame.url.startsWith('node:')) chain.push(label(f));
      }
      const key = chain.slice(0, 3).join(' < ') || '(no JS caller)';
      stacks.set(key, (stacks.get(key) ?? 0) + us);
    }
    console.log(`  ${k} is called from:`);
    for (const [c, v] of [...stacks].sort((a, b) => b[1] - a[1]).slice(0, 3)) console.log(`    ${pct(v)}  ${c}`);
  }
}
