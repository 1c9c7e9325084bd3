import { describe, expect, test } from 'vitest';
import { Counter, Gauge, Registry } from 'prom-client';
import { FamilyBuilder, renderLabels, HistogramState } from '../../src/metrics/family';
import { SnapshotStore } from '../../src/metrics/snapshot-store';
import { snapshotExposition } from '../../src/metrics/exposition';

const AWKWARD = ['plain', 'quo"te', 'back\\slash', 'new\nline', 'ünïcødé 设备', 'tab\tand "both" \\ \n', '', '{}=,'];

describe('pre-rendered exposition', () => {
  test('is byte-identical to prom-client for the same series, awkward label values included', async () => {
    const reg = new Registry();
    const gauge = new Gauge({ name: 'aliyun_mqtt_client_online', help: 'Help with \\ backslash\nand newline.', labelNames: ['region', 'client_id', 'env'], registers: [reg] });
    const counter = new Counter({ name: 'aliyun_mqtt_client_transitions_total', help: 'Transitions.', labelNames: ['to'], registers: [reg] });
    const online = new FamilyBuilder('aliyun_mqtt_client_online', 'Help with \\ backslash\nand newline.', 'gauge');
    AWKWARD.forEach((v, i) => {
      const labels = { region: 'cn-hangzhou', client_id: v, env: `e${i}` };
      gauge.set(labels, i % 2);
      online.sample(renderLabels(labels), i % 2);
    });
    const special = [NaN, Infinity, -Infinity, 1.5e-7, 123456789012];
    special.forEach((v, i) => {
      gauge.set({ region: 'x', client_id: `special${i}`, env: 'e' }, v);
      online.sample(renderLabels({ region: 'x', client_id: `special${i}`, env: 'e' }), v);
    });
    counter.inc({ to: 'online' }, 3);
    const transitions = new FamilyBuilder('aliyun_mqtt_client_transitions_total', 'Transitions.', 'counter');
    transitions.sample(renderLabels({ to: 'online' }), 3);

    const store = new SnapshotStore();
    store.put('job', 'i', [online.build(), transitions.build()], Date.now());
    const ours = [...snapshotExposition('', store)].join('');
    expect(ours).toBe(await reg.metrics());
  });

  test('appends to prom-client self-metrics text exactly as one registry would', async () => {
    const self = new Registry();
    new Gauge({ name: 'a_self', help: 'Self.', registers: [self] }).set(1);
    const both = new Registry();
    new Gauge({ name: 'a_self', help: 'Self.', registers: [both] }).set(1);
    new Gauge({ name: 'b_polled', help: 'Polled.', labelNames: ['k'], registers: [both] }).set({ k: 'v' }, 2);
    const fam = new FamilyBuilder('b_polled', 'Polled.', 'gauge').sample('k="v"', 2).build();
    const store = new SnapshotStore();
    store.put('j', 'i', [fam], Date.now());
    expect([...snapshotExposition(await self.metrics(), store)].join('')).toBe(await both.metrics());
  });

  test('merges the same family from two jobs under one HELP/TYPE header', () => {
    const store = new SnapshotStore();
    store.put('a', 'i1', [new FamilyBuilder('m', 'H.', 'gauge').sample('x="1"', 1).build()], 0);
    store.put('b', 'i2', [new FamilyBuilder('m', 'H.', 'gauge').sample('x="2"', 2).build()], 0);
    expect([...snapshotExposition('', store)].join('')).toBe('# HELP m H.\n# TYPE m gauge\nm{x="1"} 1\nm{x="2"} 2\n');
  });

  test('histograms render like prom-client (buckets with le first, +Inf, sum, count)', async () => {
    const reg = new Registry();
    const { Histogram } = await import('prom-client');
    const h = new Histogram({ name: 'd_seconds', help: 'D.', labelNames: ['topic'], buckets: [0.1, 1], registers: [reg] });
    const state = new HistogramState([0.1, 1]);
    for (const v of [0.05, 0.5, 2]) {
      h.observe({ topic: 't' }, v);
      state.observe(v);
    }
    const fam = new FamilyBuilder('d_seconds', 'D.', 'histogram').histogram('topic="t"', state.bounds, state.counts, state.sum, state.count).build();
    const store = new SnapshotStore();
    store.put('j', 'i', [fam], 0);
    expect([...snapshotExposition('', store)].join('')).toBe(await reg.metrics());
  });

  test('drops parts older than stale_after; the instance stays stale until a fresh poll replaces its data', () => {
    const store = new SnapshotStore();
    const fam = new FamilyBuilder('m', 'H.', 'gauge').sample('', 1).build();
    store.setStaleAfter('j', 1000);
    store.put('j', 'i', [fam], 0);
    expect(store.expire(1000)).toEqual([]);
    expect(store.isStale('j', 'i')).toBe(false);
    expect(store.expire(1001)).toEqual([['j', 'i']]);
    expect(store.isStale('j', 'i')).toBe(true);
    // Later scrapes drop nothing more, yet the instance is still missing its data: still stale.
    expect(store.expire(5000)).toEqual([]);
    expect(store.isStale('j', 'i')).toBe(true);
    expect([...snapshotExposition('', store)].join('')).toBe('');
    store.put('j', 'i', [fam], 5000);
    expect(store.isStale('j', 'i')).toBe(false);
  });
});
