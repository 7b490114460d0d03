// The data directory's LOCK file: one process at a time per directory, and a lock left by a dead process taken over.
import { randomUUID } from 'node:crypto';
import { readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SwitchyardError, errorMessage } from '../../core/errors.js';
import { errCode, ioError, unlinkIfPresent } from './files.js';
import type { EmbeddedStoreLogger } from './files.js';

export const LOCK_FILE = 'LOCK';

/**
 * LOCK holds {pid, token}. Node has no flock, so liveness is a signal-0 probe of the pid. A lock
 * naming our own pid is either another store instance in this process (written after we started)
 * or left by an earlier process that had the same pid (pid 1 in a container), told apart by mtime.
 */
export class DirLock {
  private readonly path: string;
  private readonly token = randomUUID();
  private held = false;

  constructor(private readonly dir: string, private readonly logger: EmbeddedStoreLogger) {
    this.path = join(dir, LOCK_FILE);
  }

  async acquire(): Promise<void> {
    for (let attempt = 0; attempt < 20; attempt++) {
      try {
        await writeFile(this.path, `${JSON.stringify({ pid: process.pid, token: this.token })}\n`, { flag: 'wx' });
        this.held = true;
        return;
      } catch (err) {
        if (errCode(err) !== 'EEXIST') throw ioError(`cannot create lock file ${this.path}`, err);
      }
      const holder = await this.readHolder();
      if (holder === undefined) continue;
      if (holder.pid === undefined) {
        // Created but not yet written: another process may be between open and write right now.
        if (Date.now() - holder.mtimeMs < 2000) {
          await sleep(50);
          continue;
        }
      } else if (this.alive(holder.pid, holder.mtimeMs)) {
        throw new SwitchyardError('SY_ERR_STORE_IO',
          `data directory ${this.dir} is locked by process ${holder.pid} (${this.path}); two processes cannot open one store`);
      }
      this.logger.warn({ file: this.path, pid: holder.pid ?? null }, `removing stale lock ${this.path} left by a process that is gone`);
      await unlinkIfPresent(this.path).catch((err: unknown) => {
        throw ioError(`cannot remove stale lock ${this.path}`, err);
      });
    }
    throw new SwitchyardError('SY_ERR_STORE_IO', `could not acquire ${this.path}: it keeps reappearing`);
  }

  async release(): Promise<void> {
    if (!this.held) return;
    this.held = false;
    try {
      if ((await readFile(this.path, 'utf8')).includes(this.token)) await unlink(this.path);
    } catch (err) {
      if (errCode(err) !== 'ENOENT') this.logger.warn({ file: this.path, err: errorMessage(err) }, 'could not remove lock file');
    }
  }

  private async readHolder(): Promise<{ pid: number | undefined; mtimeMs: number } | undefined> {
    try {
      const [text, st] = await Promise.all([readFile(this.path, 'utf8'), stat(this.path)]);
      let pid: number | undefined;
      try {
        const parsed = JSON.parse(text) as { pid?: unknown };
        if (Number.isSafeInteger(parsed.pid) && (parsed.pid as number) > 0) pid = parsed.pid as number;
      } catch {
        pid = undefined;
      }
      return { pid, mtimeMs: st.mtimeMs };
    } catch (err) {
      if (errCode(err) === 'ENOENT') return undefined;
      throw ioError(`cannot read lock file ${this.path}`, err);
    }
  }

  private alive(pid: number, mtimeMs: number): boolean {
    if (pid === process.pid) {
      const startedAt = Date.now() - process.uptime() * 1000;
      // 50 ms covers the coarse clock behind file timestamps.
      return mtimeMs >= startedAt - 50;
    }
    try {
      process.kill(pid, 0);
      return true;
    } catch (err) {
      return errCode(err) === 'EPERM';
    }
  }
}

