/**
 * Masks personal data (phone numbers, addresses, e-mail addresses, positions) in what operators
 * see of jobs: their data, return values, failure reasons, stack traces and logs. Our batch
 * payloads carry ids and counts only, but a failure reason may quote a row, and jobs from before
 * batches or from another producer may carry a whole order.
 *
 * Written here rather than taken from a PII library: those we looked at know US phone formats
 * (not +86 138..., 021-5555-1234) and mask every long digit run, which would mask our 18-19 digit
 * order ids, the one thing an operator needs from a job. Masking errs toward too much: a
 * date-less 7-15 digit run is taken for a phone number.
 */

/** Keys whose whole value is personal (in job data, or quoted in a message as key: value). */
const PERSONAL_KEYS = /^(?:phone|phones|mobile|tel|telephone|phone_?number|email|e_?mail|address|addr|address_?line\d?|street|dropoff|pickup|lat|lng|lon|latitude|longitude|location|to|recipient|contact|customer|customer_?name|note|text)$/i;

const MASKED = '[masked]';

/**
 * Text patterns, applied in order. Phone: 7 to 15 digits, spaced by at most two of ' -.()' at a
 * time, optionally after '+' or '('; not inside a longer word or digit run (an order id of 18
 * digits; a job id's `-1767225600000`), and not a date.
 */
const TEXT_PATTERNS: readonly (readonly [RegExp, string])[] = [
  [/\b[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+\b/g, '[email]'],
  // "phone: ...", "address=...", '"to":"..."': the quoted value, up to the end of its clause.
  [
    /\b(phone|mobile|tel|telephone|address|addr|street|email|recipient|dropoff)("?\s*[:=]\s*)("[^"]*"|'[^']*'|[^,;}\]\n]+)/gi,
    `$1$2${MASKED}`,
  ],
  [/(?<![\w+-])(?!\d{4}-\d{2}-\d{2}(?!\d))\+?\(?\d(?:[ \-.()]{0,2}\d){6,14}(?!\w)/g, '[phone]'],
  // A street address: a house number, up to four words, a street type ("88 Century Ave", "1 Test Rd").
  [
    /\b\d{1,6}[A-Za-z]?,?\s+(?:[\p{L}'.-]+\s+){0,4}(?:st|street|rd|road|ave|avenue|blvd|boulevard|ln|lane|dr|drive|way|ct|court|pl|hwy|highway|pkwy|parkway|alley|lu|jie|dadao|hutong|nong)\b\.?/giu,
    '[address]',
  ],
  [/\b(?:room|rm|apt|apartment|unit|suite|flat|floor|fl|building|bldg)\.?\s*#?\d+[A-Za-z]?\b/gi, '[address]'],
  // Chinese addresses: a run of CJK characters and digits with a road, lane, number, room or estate in it.
  [/[\p{Script=Han}0-9０-９]*(?:路|街|大道|巷|弄|号|室|栋|幢|单元|小区)[\p{Script=Han}0-9０-９]*/gu, '[address]'],
];

/** The text with phone-like, address-like and e-mail-like parts replaced. */
export function maskText(text: string): string {
  let masked = text;
  for (const [pattern, replacement] of TEXT_PATTERNS) masked = masked.replace(pattern, replacement);
  return masked;
}

/**
 * A copy of a JSON-like value with personal data masked: the values of personal keys whole, and
 * every other string through maskText. Numbers, booleans and null stay as they are.
 */
export function maskPersonalData(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return maskText(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth > 32) return MASKED;
  if (Array.isArray(value)) return value.map((item) => maskPersonalData(item, depth + 1));
  const copy: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    copy[key] = PERSONAL_KEYS.test(key) && item !== null && item !== undefined ? MASKED : maskPersonalData(item, depth + 1);
  }
  return copy;
}
