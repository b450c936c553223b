/** Small statistics for the benchmarks. */
export function median(xs: number[]): number {
  return quantile(xs, 0.5);
}

/** The q-quantile by the nearest-rank method (q in 0..1); NaN for no values. */
export function quantile(xs: number[], q: number): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

export const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;
export const MiB = 1024 * 1024;
