// The data directory's LOCK file: one process at a time per directory, and a lock left by a dead process (or a reused PID) taken over.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { open, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SwitchyardError, errorMessage } from '../../core/errors.js';
import { errCode, ioError, unlinkIfPresent } from './files.js';
import type { EmbeddedStoreLogger } from './files.js';

export const LOCK_FILE = 'LOCK';

/** What a LOCK file records about its holder. `boot` and `start` are absent where /proc is (and in older LOCK files). */
interface Holder {
  readonly pid: number | undefined;
  /** The kernel's boot ID when the lock was taken: after a reboot every recorded PID means nothing. */
  readonly boot: string | undefined;
  /** The holder's start time in clock ticks since boot (/proc/<pid>/stat field 22): with the PID, it names one process. */
  readonly start: string | undefined;
  /** The holder's command line, for the messages. */
  readonly cmd: string | undefined;
  readonly mtimeMs: number;
}

/** Why a lock is stale, or undefined when its holder is alive. */
type Verdict = { readonly stale: false } | { readonly stale: true; readonly why: string };

/** Linux's view of a process; undefined fields where /proc cannot tell (another OS, or the process is gone). */
function bootId(): string | undefined {
  return readProc('/proc/sys/kernel/random/boot_id')?.trim();
}

function startTime(pid: number): string | undefined {
  const stat = readProc(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  // "pid (comm) state ppid …": comm may hold spaces and parentheses, so count fields after the last ")".
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields[19];
}

function commandLine(pid: number): string | undefined {
  const raw = readProc(`/proc/${pid}/cmdline`);
  if (raw === undefined) return undefined;
  const cmd = raw.split('\0').filter(Boolean).join(' ');
  return cmd.length > 200 ? `${cmd.slice(0, 200)}…` : cmd;
}

function readProc(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errCode(err) === 'EPERM';
  }
}

/**
 * LOCK holds {pid, token, boot, start, cmd}. Node has no flock, so the holder is judged alive when a
 * process with its PID exists and, where /proc tells, it is the same process: same boot, same start
 * time. A PID that now belongs to another process (after a reboot, or reused) is a stale lock, as is
 * a PID nobody has. Lock files without a start time (written before it was recorded) fall back to
 * the PID and its command line (a process that is not node cannot be the holder), plus the file's
 * age when it names our own PID.
 */
export class DirLock {
  private readonly path: string;
  private readonly token = randomUUID();
  private held = false;

  constructor(private readonly dir: string, private readonly logger: EmbeddedStoreLogger) {
    this.path = join(dir, LOCK_FILE);
  }

  async acquire(): Promise<void> {
    const self = {
      pid: process.pid, token: this.token, boot: bootId(), start: startTime(process.pid), cmd: commandLine(process.pid),
    };
    for (let attempt = 0; attempt < 20; attempt++) {
      if (await this.create(`${JSON.stringify(self)}\n`)) {
        this.held = true;
        return;
      }
      const holder = await this.readHolder();
      if (holder === undefined) continue;
      if (holder.pid === undefined) {
        // Created but not yet written: another process may be between open and write right now.
        if (Date.now() - holder.mtimeMs < 2000) {
          await sleep(50);
          continue;
        }
      }
      const verdict = holder.pid === undefined ? { stale: true as const, why: 'holds no process ID' } : this.judge(holder, holder.pid, self.boot);
      if (!verdict.stale) {
        const what = holder.cmd ?? (holder.pid !== undefined ? commandLine(holder.pid) : undefined);
        throw new SwitchyardError('SY_ERR_STORE_IO',
          `data directory ${this.dir} is locked by process ${String(holder.pid)}${what ? ` (${what})` : ''} since ${new Date(holder.mtimeMs).toISOString()} ` +
          `(${this.path}): two processes cannot share one data directory; stop that process, or give this one another data directory (--data-dir)`);
      }
      this.logger.warn({ file: this.path, pid: holder.pid ?? null, cmd: holder.cmd ?? null },
        `removing stale lock ${this.path} left by process ${String(holder.pid)}, which ${verdict.why}`);
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

  /**
   * Creates LOCK holding `content`; false when it exists already. A lock that could be created but
   * not written (a full disk) is removed again: an empty LOCK would make the next start wait for it.
   */
  private async create(content: string): Promise<boolean> {
    let fh;
    try {
      fh = await open(this.path, 'wx');
    } catch (err) {
      if (errCode(err) === 'EEXIST') return false;
      throw ioError(`cannot create lock file ${this.path}`, err);
    }
    try {
      await fh.writeFile(content);
      await fh.close();
      return true;
    } catch (err) {
      await fh.close().catch(() => undefined);
      await unlinkIfPresent(this.path).catch(() => undefined);
      throw ioError(`cannot write lock file ${this.path}`, err);
    }
  }

  private judge(holder: Holder, pid: number, boot: string | undefined): Verdict {
    if (holder.boot !== undefined && boot !== undefined && holder.boot !== boot) return { stale: true, why: 'ran before the machine last booted' };
    if (pid !== process.pid && !processExists(pid)) return { stale: true, why: 'is gone' };
    const start = startTime(pid);
    if (holder.start !== undefined && start !== undefined) {
      if (holder.start === start) return { stale: false };
      const now = commandLine(pid);
      return { stale: true, why: `is gone (its PID now belongs to another process${now ? `: ${now}` : ''})` };
    }
    if (pid === process.pid) {
      // No start time recorded: another store in this process wrote it after we started, or an
      // earlier process with our PID (pid 1 in a container) did before. 50 ms covers coarse file clocks.
      const startedAt = Date.now() - process.uptime() * 1000;
      return holder.mtimeMs >= startedAt - 50 ? { stale: false } : { stale: true, why: 'was an earlier process with this PID' };
    }
    // No start time recorded: a process that is plainly not Switchyard (not node) cannot be the holder.
    const cmd = commandLine(pid);
    if (cmd !== undefined && !/\b(node|switchyard)\b/.test(cmd)) return { stale: true, why: `is gone (its PID now belongs to ${cmd})` };
    return { stale: false };
  }

  private async readHolder(): Promise<Holder | undefined> {
    try {
      const [text, st] = await Promise.all([readFile(this.path, 'utf8'), stat(this.path)]);
      let parsed: Record<string, unknown> = {};
      try {
        const v = JSON.parse(text) as unknown;
        if (typeof v === 'object' && v !== null) parsed = v as Record<string, unknown>;
      } catch {
        parsed = {};
      }
      const str = (k: string): string | undefined => (typeof parsed[k] === 'string' ? parsed[k] : undefined);
      const pid = Number.isSafeInteger(parsed['pid']) && (parsed['pid'] as number) > 0 ? (parsed['pid'] as number) : undefined;
      return { pid, boot: str('boot'), start: str('start'), cmd: str('cmd'), mtimeMs: st.mtimeMs };
    } catch (err) {
      if (errCode(err) === 'ENOENT') return undefined;
      throw ioError(`cannot read lock file ${this.path}`, err);
    }
  }
}
