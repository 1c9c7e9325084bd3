// A job's cluster handover (core/job-type.ts JobHandover) when its state is small: one JSON section, restored as a
// whole; its families travel as bytes. The section's name carries its version.
import type { JobHandover } from '../../core/job-type';

export function jsonHandover<T>(section: string, save: () => T, restore: (state: T) => void, extra: Pick<JobHandover, 'standby'> = {}): JobHandover {
  return {
    ...extra,
    save: () => new Map([[section, Buffer.from(JSON.stringify(save()), 'utf8')]]),
    restore: async (sections) => {
      const bytes = sections.get(section);
      if (bytes) restore(JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')) as T);
      return undefined;
    },
  };
}
