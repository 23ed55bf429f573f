import { DomainError } from '../domain/errors.ts';

/** Object ids are integers; anything else names no object. */
export function parseId(id: string | number): number {
  const value = typeof id === 'number' ? id : /^\d{1,10}$/.test(id) ? Number(id) : NaN;
  if (!Number.isSafeInteger(value) || value < 1 || value > 2_147_483_647) throw new DomainError('NOT_FOUND');
  return value;
}
