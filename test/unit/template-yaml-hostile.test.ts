// parseYAML reads KV values anyone with write access chose: whatever the text, it returns a value or throws its own
// error (never a TypeError, a RangeError or an abort), and what it returns can be written back by toYAML.
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { unmarshalYaml, YamlParseError } from '../../src/template/yaml-parse.js';
import { marshalYaml } from '../../src/template/yaml.js';

describe('parseYAML on hostile text', () => {
  it('random YAML-ish text: a value or a YamlParseError, and the value marshals', () => {
    const unit = fc.constantFrom('a', '1', ' ', '\n', '-', ':', '?', '&a', '*a', '*b', '&b', '[', ']', '{', '}', ',', '#', '!', '!!str', '!!int',
      '!!binary', '!!map', '!!seq', '!!float', '!!null', '|', '>', '"', "'", '<<', '%YAML 1.1\n', '---', '...', '\t', '~', 'yes', '0x1', '.inf', '\\',
      '@', '`', '%TAG ! tag:x,2000:\n', '! ', '!<tag:yaml.org,2002:str>', '?\n', '- - ', '  ', '\r', '\u0085', '\u2028', '\ufeff', '\u0000');
    fc.assert(fc.property(fc.array(unit, { maxLength: 40 }).map((a) => a.join('')), (text) => {
      let v;
      try {
        v = unmarshalYaml(text);
      } catch (err) {
        if (err instanceof YamlParseError) return;
        throw err;
      }
      marshalYaml(v);
    }), { numRuns: 3000 });
  });
});
