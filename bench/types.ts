import type { DbKind } from './target.js';

/** The figures one run of one benchmark produced, by name. */
export type Figures = Record<string, number | boolean | string | null>;

/** One row of the table: a figure with its target. */
export interface Metric {
  key: string;
  label: string;
  /** The target as people read it, e.g. "≥ 1.0×". */
  target: string;
  unit?: string;
  pass(value: number | boolean): boolean;
}

export interface Benchmark {
  name: string;
  metrics: Metric[];
  run(db: DbKind): Promise<Figures>;
}

export const atLeast = (min: number) => (v: number | boolean) => typeof v === 'number' && v >= min;
export const atMost = (max: number) => (v: number | boolean) => typeof v === 'number' && v <= max;
