// Go's time.Format reference-layout formatting ("2006-01-02T15:04:05Z07:00") for UTC instants.

const LONG_MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const LONG_DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

export const RFC3339 = '2006-01-02T15:04:05Z07:00';

const pad = (n: number, w: number, c = '0'): string => String(n).padStart(w, c);

function isDigit(s: string, i: number): boolean {
  const c = s[i];
  return c !== undefined && c >= '0' && c <= '9';
}

/** time.Time.Format in UTC (JS dates carry milliseconds, so nanosecond digits beyond them are zeros). */
export function formatGoTime(d: Date, layout: string): string {
  const year = d.getUTCFullYear();
  const month = d.getUTCMonth();
  const day = d.getUTCDate();
  const hour = d.getUTCHours();
  const minute = d.getUTCMinutes();
  const second = d.getUTCSeconds();
  const nanos = d.getUTCMilliseconds() * 1_000_000;
  const yday = Math.floor((Date.UTC(year, month, day) - Date.UTC(year, 0, 1)) / 86_400_000) + 1;
  const hour12 = hour % 12 === 0 ? 12 : hour % 12;
  let out = '';
  let i = 0;
  const take = (s: string): boolean => {
    if (!layout.startsWith(s, i)) return false;
    i += s.length;
    return true;
  };
  while (i < layout.length) {
    const c = layout[i] as string;
    switch (c) {
      case 'J':
        if (take('January')) { out += LONG_MONTHS[month]; continue; }
        if (take('Jan')) { out += (LONG_MONTHS[month] as string).slice(0, 3); continue; }
        break;
      case 'M':
        if (take('Monday')) { out += LONG_DAYS[d.getUTCDay()]; continue; }
        if (take('Mon')) { out += (LONG_DAYS[d.getUTCDay()] as string).slice(0, 3); continue; }
        if (take('MST')) { out += 'UTC'; continue; }
        break;
      case '0':
        if (take('002')) { out += pad(yday, 3); continue; }
        if (take('01')) { out += pad(month + 1, 2); continue; }
        if (take('02')) { out += pad(day, 2); continue; }
        if (take('03')) { out += pad(hour12, 2); continue; }
        if (take('04')) { out += pad(minute, 2); continue; }
        if (take('05')) { out += pad(second, 2); continue; }
        if (take('06')) { out += pad(year % 100, 2); continue; }
        break;
      case '1':
        if (take('15')) { out += pad(hour, 2); continue; }
        i++;
        out += String(month + 1);
        continue;
      case '2':
        if (take('2006')) { out += pad(year, 4); continue; }
        i++;
        out += String(day);
        continue;
      case '_':
        if (layout.startsWith('_2', i) && !layout.startsWith('_2006', i)) {
          if (take('__2')) { out += pad(yday, 3, ' '); continue; }
          i += 2;
          out += pad(day, 2, ' ');
          continue;
        }
        break;
      case '3': i++; out += String(hour12); continue;
      case '4': i++; out += String(minute); continue;
      case '5': i++; out += String(second); continue;
      case 'P':
        if (take('PM')) { out += hour >= 12 ? 'PM' : 'AM'; continue; }
        break;
      case 'p':
        if (take('pm')) { out += hour >= 12 ? 'pm' : 'am'; continue; }
        break;
      case '-':
        if (take('-07:00:00')) { out += '+00:00:00'; continue; }
        if (take('-070000')) { out += '+000000'; continue; }
        if (take('-07:00')) { out += '+00:00'; continue; }
        if (take('-0700')) { out += '+0000'; continue; }
        if (take('-07')) { out += '+00'; continue; }
        break;
      case 'Z':
        // Go writes "Z" for UTC in the Z-prefixed zone layouts.
        if (take('Z07:00:00') || take('Z070000') || take('Z07:00') || take('Z0700') || take('Z07')) { out += 'Z'; continue; }
        break;
      case '.':
      case ',': {
        const digit = layout[i + 1];
        if (digit === '0' || digit === '9') {
          let j = i + 1;
          while (layout[j] === digit) j++;
          if (!isDigit(layout, j)) {
            const n = j - i - 1;
            let frac = pad(nanos, 9).slice(0, Math.min(n, 9));
            if (digit === '9') frac = frac.replace(/0+$/, '');
            if (frac !== '' || digit === '0') out += c + frac;
            i = j;
            continue;
          }
        }
        break;
      }
    }
    out += c;
    i++;
  }
  return out;
}
