// Per instance, which client IDs the session APIs' answers leave out or add (scenario key `partial_answers`, see
// scenario.ts): the answers change, the truth does not.
import type { PartialAnswers } from './scenario';

export class PartialAnswerer {
  private cfg!: PartialAnswers;
  private omitSet!: ReadonlySet<string>;
  private omittedCount = 0;
  private addedCount = 0;
  private unrequested = 0;

  constructor(
    cfg: PartialAnswers,
    private readonly random: () => number,
  ) {
    this.replace(cfg);
  }

  replace(cfg: PartialAnswers): void {
    this.cfg = cfg;
    this.omitSet = new Set(cfg.omit);
  }

  /**
   * The configuration, and how many IDs the answers left out and added so far (counted as each answer is built: an
   * injected malformed body, decided apart, may still replace it).
   */
  state(): PartialAnswers & { omitted: number; added: number } {
    return { ...this.cfg, omitted: this.omittedCount, added: this.addedCount };
  }

  /** Whether this answer leaves out the requested `clientId`. No random draw at rate 0: seeded fault sequences stay as they were. */
  omits(clientId: string): boolean {
    const omit = this.omitSet.has(clientId) || (this.cfg.omit_rate > 0 && this.random() < this.cfg.omit_rate);
    if (omit) this.omittedCount++;
    return omit;
  }

  /** Client IDs a Batch answer for `requested` carries although nobody asked for them. */
  extras(requested: readonly string[]): string[] {
    const asked = new Set(requested);
    const out = this.cfg.extra.filter((id) => !asked.has(id));
    if (this.cfg.extra_rate > 0 && this.random() < this.cfg.extra_rate) {
      const first = requested[0] ?? '';
      const group = first.includes('@@@') ? first.slice(0, first.indexOf('@@@')) : 'GID_emulator';
      out.push(`${group}@@@unrequested-${++this.unrequested}`);
    }
    this.addedCount += out.length;
    return out;
  }
}
