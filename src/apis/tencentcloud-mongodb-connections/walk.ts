// The page walk of one instance's DescribeClientConnections answers: never loops forever, and says whether it saw every
// record exactly once (see index.ts for the decisions).
import type { ClientRecord, Page } from './parse';

export interface WalkResult {
  /** IP → latest record seen in this walk. */
  clients: Map<string, ClientRecord>;
  /** TotalCount of the last page read. */
  totalCount: number;
  pages: number;
  /** Why the walk did not see every record exactly once; empty when it did. */
  problems: string[];
  /** Harmless oddities (a short page when every record was still read exactly once). */
  notes: string[];
}

/**
 * Reads every page of one instance once. Never loops forever: at most ceil(first TotalCount / page size) + 2 pages,
 * the page size being Limit, or the first page's size when the server returns fewer records than asked.
 * `fetch(offset, limit)` performs one call. Problems (not errors) make the walk inconsistent.
 */
export async function walkPages(fetch: (offset: number, limit: number) => Promise<Page>, limit: number): Promise<WalkResult> {
  const clients = new Map<string, ClientRecord>();
  const problems: string[] = [];
  const notes: string[] = [];
  let offset = 0;
  let pages = 0;
  let firstTotal = 0;
  let total = 0;
  let maxPages = Infinity;
  let duplicates = 0;
  for (;;) {
    const page = await fetch(offset, limit);
    pages++;
    if (pages === 1) {
      firstTotal = page.totalCount;
      // A server that caps its pages below Limit shows it on the first page: plan with its page size.
      const n = page.clients.length;
      const perPage = n > 0 && n < limit && n < firstTotal ? n : limit;
      maxPages = Math.ceil(firstTotal / perPage) + 2;
    } else if (page.totalCount !== total) {
      problems.push(`TotalCount moved from ${total} to ${page.totalCount} at offset ${offset}`);
    }
    total = page.totalCount;
    for (const c of page.clients) {
      if (clients.has(c.ip)) {
        duplicates++;
        clients.delete(c.ip); // the latest record wins, in the position it was last seen
      }
      clients.set(c.ip, c);
    }
    const received = page.clients.length;
    offset += received;
    if (offset >= total) break;
    if (received === 0) {
      problems.push(`empty page at offset ${offset} before TotalCount ${total} was reached`);
      break;
    }
    if (received < limit) notes.push(`short page: ${received} of ${limit} records at offset ${offset - received} (TotalCount ${total})`);
    if (pages >= maxPages) {
      problems.push(`stopped after ${pages} pages (the cap for a first TotalCount of ${firstTotal}) at offset ${offset} of ${total}`);
      break;
    }
  }
  if (duplicates > 0) problems.push(`${duplicates} record(s) repeated an IP already seen`);
  if (clients.size !== total) problems.push(`${clients.size} distinct IPs read, but TotalCount is ${total}`);
  if (problems.length > 0) problems.push(...notes);
  return { clients, totalCount: total, pages, problems, notes };
}

