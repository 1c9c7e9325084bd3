// Version and revision of this build, for cloud_session_exporter_build_info and --version.
import fs from 'node:fs';
import path from 'node:path';

function readVersion(): string {
  // From src/core/ (tests run the sources) and from dist/src/core/ (the built exporter, the container image).
  for (const rel of ['../../package.json', '../../../package.json']) {
    try {
      return JSON.parse(fs.readFileSync(path.join(__dirname, rel), 'utf8')).version ?? 'unknown';
    } catch {
      // try the next location
    }
  }
  return 'unknown';
}

export const BUILD = { version: readVersion(), revision: process.env.CSE_REVISION ?? 'unknown' };
