/** The roles a Ferry process can run (`ferry start` runs all three). */
export type Role = 'gateway' | 'web' | 'worker';
