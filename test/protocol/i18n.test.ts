import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { EVENT_TYPES } from '../../protocol/src/centre/contract.js';
import { loadCatalogue, messagesFor, t } from '../../protocol/src/i18n.js';

describe('message catalogue', () => {
  it('formats Danish first, English as a setting, with ICU plurals', () => {
    expect(t('da', 'common.pills', { count: 1 })).toBe('1 tablet');
    expect(t('da', 'common.pills', { count: 4 })).toBe('4 tabletter');
    expect(t('en', 'common.pills', { count: 4 })).toBe('4 pills');
    expect(() => t('da', 'common.no-such-key')).toThrow(/no message/);
  });

  it('names every alarm event type in words, in both languages', () => {
    for (const type of EVENT_TYPES) {
      expect(t('da', `common.eventType.${type}`)).not.toContain('_');
      expect(t('en', `common.eventType.${type}`)).not.toContain('_');
    }
  });

  it('gives a page the raw messages of the areas it asks for', () => {
    const m = messagesFor('en', ['common']);
    expect(m['common.pills']).toContain('plural');
    expect(Object.keys(m).every((k) => k.startsWith('common.'))).toBe(true);
  });

  it('refuses a catalogue with a key in one language only, or a message that does not parse', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dosis-i18n-'));
    writeFileSync(join(dir, 'x.json'), JSON.stringify({ da: { a: 'A', b: 'B' }, en: { a: 'A' } }));
    expect(() => loadCatalogue(pathToFileURL(`${dir}/`))).toThrow(/x\.b has da text but no en text/);
    writeFileSync(join(dir, 'x.json'), JSON.stringify({ da: { a: '{n, plural, one {' }, en: { a: 'A' } }));
    expect(() => loadCatalogue(pathToFileURL(`${dir}/`))).toThrow(/does not parse/);
  });
});
