/** Time is injected so tests can control it (expiry, key grace periods, retry schedules). */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };
