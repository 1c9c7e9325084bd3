// The MongoDB section of docs/metrics.md: how the per-IP series, the `other` fold and the totals add up.
import type { JobTypeDocs } from '../../core/job-type';

export const MONGODB_DOCS: JobTypeDocs = {
  title: 'TencentDB for MongoDB — client connections',
  notes: `How the numbers relate, so sums in PromQL stay exact:

- **Totals.** \`tencentcloud_mongodb_connections\` is the sum over the client IPs the cloud listed (after de-duplication),
  so \`sum by (instance_id) (tencentcloud_mongodb_client_connections)\` always equals it, and
  \`tencentcloud_mongodb_client_ips\` is the number of those IPs.
- **\`TotalCount\`.** The documentation's samples disagree about it (1 with 2 clients listed; 0; absent), so the walk
  never relies on it: it reads pages until one is shorter than \`page_size\` (a last page that happens to be full costs
  one more call, answered empty). \`tencentcloud_mongodb_total_count_reported\` shows what the cloud said (no series when it
  said nothing) and \`tencentcloud_mongodb_total_count_mismatch\` is 1 when that was absent or differed from
  \`tencentcloud_mongodb_client_ips\`. A disagreement costs no extra calls. A \`TotalCount\` persistently **above** the
  IPs listed may mean clients the walk did not see (a server that pages below \`page_size\`): see the runbook.
- **The cap.** Per instance, the \`max_client_ips\` IPs (default 300) with the most connections keep their own series;
  the rest are summed into \`client_ip="other"\`, **split by \`internal_service\`**: one \`other\` series with
  \`internal_service="false"\` and one with \`"true"\`, so \`sum by (internal_service)\` is exact too. Both \`other\` series
  appear whenever anything was folded (a side with nothing folded reads 0), neither when nothing was.
  \`tencentcloud_mongodb_client_ips_folded_total\` counts the folded IPs, summed over polls: \`rate()\` of it shows how much
  of the fleet hides in \`other\`.
- **Pages that change under the walk.** A walk is complete when \`TotalCount\` never moved between its pages and no IP
  appeared twice. Otherwise the walk is repeated once; if it is inconsistent again, its data are used
  with \`tencentcloud_mongodb_result_complete\` 0 (an IP listed twice keeps its later, fresher record).
  \`tencentcloud_mongodb_pages_fetched\` counts the pages of both walks.
- **Unsupported instances.** When the cloud answers \`InvalidParameterValue.MongoVersionNotSupportQueryClient\`,
  \`…ProxyNotSupportQueryClient\` or \`…RegionNotSupportQueryClient\`, that instance emits only
  \`tencentcloud_mongodb_client_query_supported 0\`, \`tencentcloud_mongodb_pages_fetched 0\` and the folded counter — no
  per-IP, total or completeness series — and its poll counts as a success (it is a known state, not an outage:
  \`cloud_session_exporter_instance_success\` stays 1, and a warning is logged once). The job's other instances are
  polled as usual. Alert on \`tencentcloud_mongodb_client_query_supported == 0\` if you expect none.
- **One failing instance** (an auth or network error, say) sets its \`cloud_session_exporter_instance_success\` to 0 and
  the job's \`cloud_session_exporter_job_success\` to 0, keeps that instance's last good values until \`stale_after\`,
  and leaves the other instances' series fresh.`,
};
