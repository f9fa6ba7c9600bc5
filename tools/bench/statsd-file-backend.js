/*
 * tools/bench/statsd-file-backend.js: an Etsy statsd backend for
 * tools/bench_timing.py. On every flush it appends one JSON line to the
 * file named by the config's `fileBackend.path`:
 *   {"flush": N, "ts": T, "timers": {name: timer_data}, "sets": {name: n}}
 * where timer_data is what statsd computed for the flush (count, lower,
 * upper, mean, median, upper_99, mean_99, ... for every percentThreshold)
 * and n is the flush's distinct members of a set. Only metrics that had
 * events in the flush are written (statsd keeps idle keys around).
 */
'use strict';

const fs = require('fs');

exports.init = function (startupTime, config, events) {
  const path = config.fileBackend && config.fileBackend.path;
  if (!path) {
    throw new Error('statsd-file-backend: set fileBackend: { path: "..." } in the config');
  }
  const fd = fs.openSync(path, 'a');
  let flush = 0;
  events.on('flush', function (ts, metrics) {
    const timers = {};
    const sets = {};
    for (const key in metrics.timer_data) {
      if (metrics.timer_data[key].count > 0) {
        timers[key] = metrics.timer_data[key];
      }
    }
    for (const key in metrics.sets) {
      const n = metrics.sets[key].values().length;
      if (n > 0) {
        sets[key] = n;
      }
    }
    flush += 1;
    fs.writeSync(fd, JSON.stringify({ flush: flush, ts: ts, timers: timers, sets: sets }) + '\n');
  });
  return true;
};
