'use strict';
// Small statistics helpers shared by the bench scripts.
function sorted(xs) { return [...xs].sort((a, b) => a - b); }
function median(xs) {
  const s = sorted(xs), n = s.length;
  if (!n) return NaN;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}
// Nearest-rank percentile: p90 of 20 values is the 18th smallest.
function pct(xs, p) {
  const s = sorted(xs);
  if (!s.length) return NaN;
  return s[Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length))) - 1];
}
function fmt(x, digits = 1) {
  if (!Number.isFinite(x)) return 'n/a';
  const s = x.toFixed(digits);
  return Number(s) === 0 ? (0).toFixed(digits) : s;  // no "-0.0"
}
module.exports = { median, pct, fmt };
