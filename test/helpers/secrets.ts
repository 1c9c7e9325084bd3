// Finds secrets in captured output in every form the exporter promises never to show: raw, URL-encoded once or
// twice, JSON-escaped, base64 at any byte alignment, or any 12-character stretch of one of those.
const WINDOW = 12;

function forms(secret: string): string[] {
  const once = encodeURIComponent(secret);
  const out = [secret, once, encodeURIComponent(once), JSON.stringify(secret).slice(1, -1)];
  for (let pad = 0; pad < 3; pad++) {
    const b64 = Buffer.concat([Buffer.alloc(pad), Buffer.from(secret)]).toString('base64');
    // Drop the characters that depend on the neighbours (see src/redact.ts).
    out.push(b64.slice(Math.ceil((pad * 4) / 3), Math.floor(((pad + Buffer.byteLength(secret)) * 4) / 3)));
  }
  return out;
}

/** Each leak as "<secret name>: <form excerpt>"; empty when none of the secrets shows in the text. */
export function findSecretLeaks(text: string, secrets: Readonly<Record<string, string>>): string[] {
  const leaks: string[] = [];
  const lower = text.toLowerCase();
  for (const [name, secret] of Object.entries(secrets)) {
    for (const form of forms(secret)) {
      const windows = form.length <= WINDOW ? [form] : Array.from({ length: form.length - WINDOW + 1 }, (_, i) => form.slice(i, i + WINDOW));
      // Percent-encoded forms may come back with lower-case hex.
      const hit = windows.find((w) => text.includes(w) || (w.includes('%') && lower.includes(w.toLowerCase())));
      if (hit !== undefined) {
        leaks.push(`${name}: ${hit}`);
        break;
      }
    }
  }
  return leaks;
}
