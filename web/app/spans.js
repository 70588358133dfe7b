// The counterfactual demo's sentence with its antecedent and consequent marked, and the comparison
// of two results ("changed from ... at 8 bits"). DOM nodes only: the sentence is the visitor's
// text and is never parsed as HTML.

const ROLE = {
  antecedent: { className: 'ant', label: 'antecedent' },
  consequent: { className: 'con', label: 'consequent' },
};

/**
 * Fills `box` with `text`, the spans of `result` (a detect() result) wrapped in <mark> elements.
 * The UTF-16 offsets (startUtf16, endUtf16: half-open) are what String.prototype.slice takes; the
 * character offsets (start, end inclusive) go on the marks as data-* for the tests and the CSV.
 * Spans are drawn in text order; one that overlaps an earlier one is drawn from where that ends
 * (the decoder should never produce that, but a mark must not repeat text).
 */
export function renderMarked(box, text, result) {
  box.replaceChildren();
  const spans = ['antecedent', 'consequent']
    .filter((role) => result?.[role])
    .map((role) => ({ role, ...result[role] }))
    .sort((a, b) => a.startUtf16 - b.startUtf16);
  let at = 0;
  for (const s of spans) {
    const start = Math.max(s.startUtf16, at);
    const end = Math.min(s.endUtf16, text.length);
    if (end <= start) continue;
    if (start > at) box.append(text.slice(at, start));
    const mark = document.createElement('mark');
    mark.className = ROLE[s.role].className;
    mark.dataset.role = s.role;
    mark.dataset.start = String(s.start);
    mark.dataset.end = String(s.end);
    mark.title = `${ROLE[s.role].label}: characters ${s.start} to ${s.end}`;
    const tag = document.createElement('span');
    tag.className = 'role';
    tag.textContent = ROLE[s.role].label;
    // The tag is for sight; a screen reader hears the role from the label on the mark.
    tag.setAttribute('aria-hidden', 'true');
    mark.setAttribute('aria-label', `${ROLE[s.role].label}: ${text.slice(start, end)}`);
    mark.append(text.slice(start, end), tag);
    box.append(mark);
    at = end;
  }
  if (at < text.length) box.append(text.slice(at));
}

const spanKey = (s) => (s ? `${s.start}-${s.end}` : 'none');

/** A short description of a result's verdict and spans, for "changed from ..." notes. */
export function describe(r) {
  if (!r.counterfactual) return `not counterfactual (${pct(r.probability)})`;
  const parts = [`counterfactual (${pct(r.probability)})`];
  if (r.antecedent) parts.push(`antecedent “${r.antecedent.text}”`);
  parts.push(r.consequent ? `consequent “${r.consequent.text}”` : 'no consequent');
  return parts.join(', ');
}

/**
 * Whether two results differ in verdict or, for counterfactuals, spans (probabilities differ a
 * little at every width, and the spans decoded for a plain sentence are not shown, so neither
 * counts).
 */
export function differs(a, b) {
  if (a.counterfactual !== b.counterfactual) return true;
  return a.counterfactual
    && (spanKey(a.antecedent) !== spanKey(b.antecedent) || spanKey(a.consequent) !== spanKey(b.consequent));
}

export const pct = (p) => `${(p * 100).toFixed(1)}%`;
