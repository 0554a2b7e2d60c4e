// The store bench in small: every request of every group size is stored once, or the bench fails rather than print.
import { describe, expect, it } from 'vitest';
import { benchStore } from './store-bench.js';

describe('store bench', () => {
  it('stores each request once in groups of 1 and 4, and prints a cost for each', async () => {
    const figures = await benchStore({ requests: 202, groups: [1, 4] });
    expect(figures.map((f) => f.group)).toEqual([1, 4]);
    for (const f of figures) {
      expect(f.cpuUsPerRequest).toBeGreaterThan(0);
      expect(f.requestsPerSecond).toBeGreaterThan(0);
    }
  }, 30_000);
});
