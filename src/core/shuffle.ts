/** Fisher–Yates in place, with an injected Random (tests pin the order). */
import type { Random } from './clock.js';

export function shuffle<T>(list: T[], random: Random): void {
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(random.next() * (i + 1));
    const t = list[i] as T;
    list[i] = list[j] as T;
    list[j] = t;
  }
}
