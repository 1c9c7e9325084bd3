// The page walk of one instance's DescribeClientConnections answers: never loops forever, stops at a short page
// whatever TotalCount says, and says whether the pages changed under it (see index.ts for the decisions).
import type { ClientRecord, Page } from './parse';

export interface WalkResult {
  /** IP → latest record seen in this walk. */
  clients: Map<string, ClientRecord>;
  /** TotalCount of the last page read; undefined when that answer had none. */
  totalCount: number | undefined;
  pages: number;
  /** Why the walk may not have seen every record exactly once (the list changed under it); empty when it did. */
  problems: string[];
}

/**
 * Records a walk reads before it stops anyway (a server inventing full pages of new IPs), unless the first TotalCount
 * claims more: far beyond any instance's client IPs, and at 5 calls/s the run's deadline usually comes first.
 */
const MAX_WALK_RECORDS = 100_000;

/**
 * Reads the pages of one instance once, `fetch(offset, limit)` being one call: Offset steps by the records received,
 * and the walk ends at the first page shorter than Limit (an empty one included). TotalCount never ends it, since the
 * documentation's samples show it wrong ("1" with 2 clients), 0 and absent; the price is one call answered empty
 * when the last page happens to be full. A full page that brings no IP not already seen ends it too, and so does a cap
 * of ceil(max(first TotalCount, MAX_WALK_RECORDS) / Limit) + 2 pages.
 */
export async function walkPages(fetch: (offset: number, limit: number) => Promise<Page>, limit: number): Promise<WalkResult> {
  const clients = new Map<string, ClientRecord>();
  const problems: string[] = [];
  let offset = 0;
  let pages = 0;
  let total: number | undefined;
  let maxPages = Infinity;
  let duplicates = 0;
  for (;;) {
    const page = await fetch(offset, limit);
    pages++;
    if (pages === 1) maxPages = Math.ceil(Math.max(page.totalCount ?? 0, MAX_WALK_RECORDS) / limit) + 2;
    else if (page.totalCount !== total) problems.push(`TotalCount moved from ${total ?? 'none'} to ${page.totalCount ?? 'none'} at offset ${offset}`);
    total = page.totalCount;
    let fresh = 0;
    for (const c of page.clients) {
      if (clients.has(c.ip)) {
        duplicates++;
        clients.delete(c.ip); // the latest record wins, in the position it was last seen
      } else fresh++;
      clients.set(c.ip, c);
    }
    const received = page.clients.length;
    offset += received;
    if (received < limit) break;
    if (fresh === 0) {
      problems.push(`a full page at offset ${offset - received} repeated IPs already seen, and nothing else`);
      break;
    }
    if (pages >= maxPages) {
      problems.push(`stopped after ${pages} pages (the cap) at offset ${offset}, every page full`);
      break;
    }
  }
  if (duplicates > 0) problems.push(`${duplicates} record(s) repeated an IP already seen`);
  return { clients, totalCount: total, pages, problems };
}
