/**
 * Private data never reaches a log line in clear text: every string of every
 * line passes through here (the logger's format), so a new log call, an error
 * message quoting a recipient, or a URL with a password is covered without
 * anyone remembering to mask it.
 */

const RULES: [RegExp, (match: string, ...groups: string[]) => string][] = [
  // URL credentials: smtp://user:secret@host -> smtp://user:***@host
  [/\b([a-z][a-z0-9+.-]*:\/\/[^:/\s@]+):[^@\s/]+@/gi, (_m, head) => `${head}:***@`],
  // A bearer credential, whatever it is.
  [/\b(Bearer)\s+[A-Za-z0-9._~+/_-]+=*/gi, (_m, scheme) => `${scheme} ***`],
  // Our API keys elsewhere keep their public id: atk_0123456789_secret -> atk_0123456789_***
  [/\b(atk_[a-z0-9]{10})_[A-Za-z0-9_-]+/g, (_m, id) => `${id}_***`],
  // Emails keep the first character and the domain: ada@example.com -> a***@example.com
  [/\b([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)/g, (_m, first, domain) => `${first}***@${domain}`],
  // Phone numbers in international form keep their last two digits: +15550100001 -> +*********01
  [/\+\d{6,15}\b/g, (m) => `+${'*'.repeat(m.length - 3)}${m.slice(-2)}`],
];

const SECRET_FIELD = /^(authorization|password|secret|token|api[-_]?key|cookie)$/i;

/** Every rule needs one of these in the text; most log strings (ids, amounts) have none, and skip the regexes. */
const MIGHT_MATCH = /[@+]|:\/\/|atk_|bearer/i;

export function redactText(text: string): string {
  if (!MIGHT_MATCH.test(text)) return text;
  let out = text;
  for (const [pattern, replace] of RULES) out = out.replace(pattern, replace as (substring: string, ...args: any[]) => string);
  return out;
}

export const isSecretField = (key: string): boolean => SECRET_FIELD.test(key);

/** Redacts strings anywhere in a value; fields named like secrets are blanked whole. */
export function redact(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactText(value);
  if (depth > 8 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) out[key] = isSecretField(key) ? '***' : redact(v, depth + 1);
  return out;
}
