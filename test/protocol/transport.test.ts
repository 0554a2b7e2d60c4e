// The in-memory serial wire: line splitting, serial timing on the clock, close.
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../protocol/src/clock.js';
import { createMemoryWire, LineSplitter } from '../../protocol/src/transport.js';

describe('LineSplitter', () => {
  it('joins chunks into lines and passes an over-long line on instead of growing without bound', () => {
    const lines: string[] = [];
    const s = new LineSplitter((l) => lines.push(l), 16);
    s.push('$C,1,ST');
    s.push('ATUS*9EAD\n$C,2');
    expect(lines).toEqual(['$C,1,STATUS*9EAD']);
    s.push(',' + 'x'.repeat(40));
    expect(lines).toHaveLength(2);
    expect(lines[1]!.length).toBeGreaterThan(16);
  });
});

describe('createMemoryWire', () => {
  it('delivers lines after their transmit time at the baud rate, in order', () => {
    const clock = new ManualClock(0);
    const [host, dev] = createMemoryWire(clock, { baudRate: 10_000, latencyMs: 0 });
    const got: [number, string][] = [];
    dev.onLine((l) => got.push([clock.now(), l]));
    host.write('abcdefghi\n'); // 10 bytes at 1 ms each
    host.write('xyz\n');
    clock.advance(9);
    expect(got).toEqual([]);
    clock.advance(1);
    expect(got).toEqual([[10, 'abcdefghi']]);
    clock.advance(10);
    expect(got).toEqual([[10, 'abcdefghi'], [14, 'xyz']]);
  });

  it('delivers a long run of writes in order and, closed half-way, drops exactly those still on the wire', () => {
    const clock = new ManualClock(0);
    const [host, dev] = createMemoryWire(clock, { baudRate: 10_000, latencyMs: 0 });
    const got: string[] = [];
    dev.onLine((l) => got.push(l));
    for (let i = 0; i < 300; i++) host.write(`${String(i).padStart(3, '0')}\n`); // 4 bytes: each arrives 4 ms after the one before
    clock.advance(4 * 150);
    expect(got).toEqual(Array.from({ length: 150 }, (_, i) => String(i).padStart(3, '0')));
    host.close();
    expect(clock.pending).toBe(0);
    clock.advance(10_000);
    expect(got).toHaveLength(150);
  });

  it('closes both ends once and drops what was in flight', () => {
    const clock = new ManualClock(0);
    const [host, dev] = createMemoryWire(clock);
    const reasons: string[] = [];
    const got: string[] = [];
    host.onClose((r) => reasons.push(`host:${r}`));
    dev.onClose((r) => reasons.push(`dev:${r}`));
    dev.onLine((l) => got.push(l));
    host.write('late\n');
    host.close();
    host.close();
    clock.advance(100);
    expect(got).toEqual([]);
    expect(reasons).toEqual(['host:closed', 'dev:peer closed']);
    expect(dev.isOpen).toBe(false);
  });
});
