// Go's fmt.Sprintf as templates' printf uses it, checked against the outputs Go's own tests expect: every case below is
// copied from src/fmt/fmt_test.go in golang/go (fmtTests, reorderTests, TestStructPrinter) or the examples in
// src/fmt/doc.go, grouped under the comment that heads it there. Cases whose operand Go-only types (byte slices,
// complex numbers, pointers to ints, renamed types, float32, Stringers) are left out; a Go int is a number here, and
// int64/uint64 (uint, uint32…) operands are GoInts.
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { sprintf } from '../../src/template/fmt.js';
import type { Value } from '../../src/template/values.js';
import { GoFloat, GoInt, GoStruct, goMap, typedSlice } from '../../src/template/values.js';

const f = (x: number): GoFloat => new GoFloat(x);
const u = (x: number | bigint): GoInt => new GoInt('uint64', BigInt(x));
const i64 = (x: number | bigint): GoInt => new GoInt('int64', BigInt(x));
const ifaces = (...items: Value[]): readonly Value[] => typedSlice('[]interface {}', items);
const ints = (...items: number[]): readonly Value[] => typedSlice('[]int', items);
/** fmt_test.go's zeroFill. */
const zeroFill = (prefix: string, width: number, suffix: string): string => prefix + '0'.repeat(width - suffix.length) + suffix;

const NaN_ = f(NaN);
const posInf = f(Infinity);
const negInf = f(-Infinity);
const MAX_U64 = u(2n ** 64n - 1n);
const MIN_I64 = i64(-(2n ** 63n));

/** fmt_test.go's A{1, 2, "a", []int{1, 2}} (j is a uint) and TestStructPrinter's T{"abc", "def", 123}. */
const A = new GoStruct({ name: 'fmt_test.A', pointer: false, fields: ['i', 'j', 's', 'x'] }, { i: 1, j: u(2), s: 'a', x: ints(1, 2) });
const T = (pointer: boolean): GoStruct => new GoStruct({ name: 'fmt_test.T', pointer, fields: ['a', 'b', 'c'] }, { a: 'abc', b: 'def', c: 123 });
const SI = new GoStruct({ name: 'fmt_test.SI', pointer: false, fields: ['I'] }, { I: undefined });

type Case = readonly [format: string, operand: Value, want: string];

function cases(title: string, list: readonly Case[]): void {
  describe(title, () => {
    for (const [fmt, val, want] of list) {
      it(`Sprintf(${JSON.stringify(fmt)}, …) = ${JSON.stringify(want)}`, () => assert.equal(sprintf(fmt, [val]), want));
    }
  });
}

cases('fmtTests: basic', [
  ['%d', 12345, '12345'], ['%v', 12345, '12345'], ['%t', true, 'true'],
]);

cases('fmtTests: basic string', [
  ['%s', 'abc', 'abc'], ['%q', 'abc', '"abc"'], ['%x', 'abc', '616263'],
  ['%x', '', ''], ['% x', '', ''], ['%#x', '', ''], ['%# x', '', ''],
  ['%x', 'xyz', '78797a'], ['%X', 'xyz', '78797A'], ['% x', 'xyz', '78 79 7a'], ['% X', 'xyz', '78 79 7A'],
  ['%#x', 'xyz', '0x78797a'], ['%#X', 'xyz', '0X78797A'], ['%# x', 'xyz', '0x78 0x79 0x7a'], ['%# X', 'xyz', '0X78 0X79 0X7A'],
]);

cases('fmtTests: escaped strings', [
  ['%q', '', '""'], ['%#q', '', '``'], ['%q', '"', '"\\""'], ['%#q', '"', '`"`'], ['%q', '`', '"`"'], ['%#q', '`', '"`"'],
  ['%q', '\n', '"\\n"'], ['%#q', '\n', '"\\n"'], ['%q', '\\n', '"\\\\n"'], ['%#q', '\\n', '`\\n`'],
  ['%q', 'abc', '"abc"'], ['%#q', 'abc', '`abc`'],
  ['%q', '日本語', '"日本語"'], ['%+q', '日本語', '"\\u65e5\\u672c\\u8a9e"'], ['%#q', '日本語', '`日本語`'], ['%#+q', '日本語', '`日本語`'],
  ['%q', '\x07\b\f\n\r\t\v"\\', '"\\a\\b\\f\\n\\r\\t\\v\\"\\\\"'], ['%+q', '\x07\b\f\n\r\t\v"\\', '"\\a\\b\\f\\n\\r\\t\\v\\"\\\\"'],
  ['%#q', '\x07\b\f\n\r\t\v"\\', '"\\a\\b\\f\\n\\r\\t\\v\\"\\\\"'], ['%#+q', '\x07\b\f\n\r\t\v"\\', '"\\a\\b\\f\\n\\r\\t\\v\\"\\\\"'],
  ['%q', '☺', '"☺"'], ['% q', '☺', '"☺"'], ['%+q', '☺', '"\\u263a"'], ['%#q', '☺', '`☺`'], ['%#+q', '☺', '`☺`'],
  ['%10q', '⌘', '       "⌘"'], ['%+10q', '⌘', '  "\\u2318"'], ['%-10q', '⌘', '"⌘"       '], ['%+-10q', '⌘', '"\\u2318"  '],
  ['%010q', '⌘', '0000000"⌘"'], ['%+010q', '⌘', '00"\\u2318"'], ['%-010q', '⌘', '"⌘"       '], ['%+-010q', '⌘', '"\\u2318"  '],
  ['%#8q', '\n', '    "\\n"'], ['%#+8q', '\r', '    "\\r"'], ['%#-8q', '\t', '`\t`     '], ['%#+-8q', '\b', '"\\b"    '],
  // Runes that are not printable.
  ['%q', '\u{10ffff}', '"\\U0010ffff"'], ['%+q', '\u{10ffff}', '"\\U0010ffff"'], ['%#q', '\u{10ffff}', '`\u{10ffff}`'], ['%#+q', '\u{10ffff}', '`\u{10ffff}`'],
  // Runes that are not valid: string(rune(0x110000)) is "\uFFFD".
  ['%q', '\uFFFD', '"�"'], ['%+q', '\uFFFD', '"\\ufffd"'], ['%#q', '\uFFFD', '`�`'], ['%#+q', '\uFFFD', '`�`'],
]);

cases('fmtTests: characters', [
  ['%c', u('x'.codePointAt(0) as number), 'x'], ['%c', 0xe4, 'ä'], ['%c', 0x672c, '本'], ['%c', 0x65e5, '日'],
  ['%.0c', 0x2318, '⌘'], ['%3c', 0x2318, '  ⌘'], ['%-3c', 0x2318, '⌘  '],
  ['%c', 0x0e00, '\u0e00'], ['%c', 0x10ffff, '\u{10ffff}'],
  ['%c', -1, '�'], ['%c', 0xdc80, '�'], ['%c', 0x110000, '�'], ['%c', i64(0xfffffffff), '�'], ['%c', u(0xfffffffff), '�'],
]);

cases('fmtTests: escaped characters', [
  ['%q', u(0), "'\\x00'"], ['%+q', u(0), "'\\x00'"], ['%q', 0x22, `'"'`], ['%+q', 0x22, `'"'`], ['%q', 0x27, "'\\''"], ['%+q', 0x27, "'\\''"],
  ['%q', 0x60, "'`'"], ['%+q', 0x60, "'`'"], ['%q', 0x78, "'x'"], ['%+q', 0x78, "'x'"], ['%q', 0xff, "'ÿ'"], ['%+q', 0xff, "'\\u00ff'"],
  ['%q', 0x0a, "'\\n'"], ['%+q', 0x0a, "'\\n'"], ['%q', 0x263a, "'☺'"], ['%+q', 0x263a, "'\\u263a'"], ['% q', 0x263a, "'☺'"], ['%.0q', 0x263a, "'☺'"],
  ['%10q', 0x2318, "       '⌘'"], ['%+10q', 0x2318, "  '\\u2318'"], ['%-10q', 0x2318, "'⌘'       "], ['%+-10q', 0x2318, "'\\u2318'  "],
  ['%010q', 0x2318, "0000000'⌘'"], ['%+010q', 0x2318, "00'\\u2318'"], ['%-010q', 0x2318, "'⌘'       "], ['%+-010q', 0x2318, "'\\u2318'  "],
  ['%q', 0x0e00, "'\\u0e00'"], ['%q', 0x10ffff, "'\\U0010ffff'"],
  ['%q', -1, "'�'"], ['%q', 0xdc80, "'�'"], ['%q', 0x110000, "'�'"], ['%q', i64(0xfffffffff), "'�'"], ['%q', u(0xfffffffff), "'�'"],
]);

cases('fmtTests: width', [
  ['%5s', 'abc', '  abc'], ['%2s', '\u263a', ' ☺'], ['%-5s', 'abc', 'abc  '], ['%05s', 'abc', '00abc'],
  ['%5s', 'abcdefghijklmnopqrstuvwxyz', 'abcdefghijklmnopqrstuvwxyz'], ['%.5s', 'abcdefghijklmnopqrstuvwxyz', 'abcde'],
  ['%.0s', '日本語日本語', ''], ['%.5s', '日本語日本語', '日本語日本'], ['%.10s', '日本語日本語', '日本語日本語'],
  ['%08q', 'abc', '000"abc"'], ['%-8q', 'abc', '"abc"   '], ['%.5q', 'abcdefghijklmnopqrstuvwxyz', '"abcde"'],
  ['%.5x', 'abcdefghijklmnopqrstuvwxyz', '6162636465'], ['%.3q', '日本語日本語', '"日本語"'], ['%.1q', '日本語', '"日"'],
  ['%.1x', '日本語', 'e6'], ['%10.1q', '日本語日本語', '       "日"'], ['%10v', undefined, '     <nil>'], ['%-10v', undefined, '<nil>     '],
]);

cases('fmtTests: integers', [
  ['%d', u(12345), '12345'], ['%d', -12345, '-12345'], ['%d', u(255), '255'], ['%d', u(65535), '65535'], ['%d', u(4294967295), '4294967295'],
  ['%d', MAX_U64, '18446744073709551615'], ['%d', -128, '-128'], ['%d', -32768, '-32768'], ['%d', -2147483648, '-2147483648'],
  ['%d', MIN_I64, '-9223372036854775808'],
  ['%.d', 0, ''], ['%.0d', 0, ''], ['%6.0d', 0, '      '], ['%06.0d', 0, '      '],
  ['% d', 12345, ' 12345'], ['%+d', 12345, '+12345'], ['%+d', -12345, '-12345'],
  ['%b', 7, '111'], ['%b', -6, '-110'], ['%#b', 7, '0b111'], ['%#b', -6, '-0b110'],
  ['%b', u(4294967295), '11111111111111111111111111111111'], ['%b', MAX_U64, '1'.repeat(64)], ['%b', MIN_I64, zeroFill('-1', 63, '')],
  ['%o', 0o1234, '1234'], ['%o', -0o1234, '-1234'], ['%#o', 0o1234, '01234'], ['%#o', -0o1234, '-01234'],
  ['%O', 0o1234, '0o1234'], ['%O', -0o1234, '-0o1234'], ['%o', u(4294967295), '37777777777'], ['%o', MAX_U64, '1777777777777777777777'],
  ['%#X', 0, '0X0'], ['%x', 0x12abcdef, '12abcdef'], ['%X', 0x12abcdef, '12ABCDEF'], ['%x', u(4294967295), 'ffffffff'], ['%X', MAX_U64, 'FFFFFFFFFFFFFFFF'],
  ['%.20b', 7, '00000000000000000111'], ['%10d', 12345, '     12345'], ['%10d', -12345, '    -12345'], ['%+10d', 12345, '    +12345'],
  ['%010d', 12345, '0000012345'], ['%010d', -12345, '-000012345'], ['%20.8d', 1234, '            00001234'], ['%20.8d', -1234, '           -00001234'],
  ['%020.8d', 1234, '            00001234'], ['%020.8d', -1234, '           -00001234'], ['%-20.8d', 1234, '00001234            '],
  ['%-20.8d', -1234, '-00001234           '], ['%-#20.8x', 0x1234abc, '0x01234abc          '], ['%-#20.8X', 0x1234abc, '0X01234ABC          '],
  ['%-#20.8o', 0o1234, '00001234            '],
]);

cases('fmtTests: Test correct f.intbuf overflow checks', [
  ['%068d', 1, zeroFill('', 68, '1')], ['%068d', -1, zeroFill('-', 67, '1')], ['%#.68x', 42, zeroFill('0x', 68, '2a')],
  ['%.68d', -42, zeroFill('-', 68, '42')], ['%+.68d', 42, zeroFill('+', 68, '42')], ['% .68d', 42, zeroFill(' ', 68, '42')],
  ['% +.68d', 42, zeroFill('+', 68, '42')],
]);

cases('fmtTests: unicode format', [
  ['%U', 0, 'U+0000'], ['%U', -1, 'U+FFFFFFFFFFFFFFFF'], ['%U', 0x0a, 'U+000A'], ['%#U', 0x0a, 'U+000A'], ['%+U', 0x78, 'U+0078'],
  ['%# U', 0x78, "U+0078 'x'"], ['%#.2U', 0x78, "U+0078 'x'"], ['%U', 0x263a, 'U+263A'], ['%#U', 0x263a, "U+263A '☺'"],
  ['%U', 0x1d6c2, 'U+1D6C2'], ['%#U', 0x1d6c2, "U+1D6C2 '𝛂'"], ['%#14.6U', 0x2318, "  U+002318 '⌘'"], ['%#-14.6U', 0x2318, "U+002318 '⌘'  "],
  ['%#014.6U', 0x2318, "  U+002318 '⌘'"], ['%#-014.6U', 0x2318, "U+002318 '⌘'  "], ['%.68U', u(42), zeroFill('U+', 68, '2A')],
  ['%#.68U', 0x65e5, `${zeroFill('U+', 68, '65E5')} '日'`],
]);

cases('fmtTests: floats', [
  ['%+.3e', f(0), '+0.000e+00'], ['%+.3e', f(1), '+1.000e+00'], ['%+.3x', f(0), '+0x0.000p+00'], ['%+.3x', f(1), '+0x1.000p+00'],
  ['%+.3f', f(-1), '-1.000'], ['%+.3F', f(-1), '-1.000'], ['%+07.2f', f(1), '+001.00'], ['%+07.2f', f(-1), '-001.00'],
  ['%-07.2f', f(1), '1.00   '], ['%-07.2f', f(-1), '-1.00  '], ['%+-07.2f', f(1), '+1.00  '], ['%+-07.2f', f(-1), '-1.00  '],
  ['%-+07.2f', f(1), '+1.00  '], ['%-+07.2f', f(-1), '-1.00  '], ['%+10.2f', f(1), '     +1.00'], ['%+10.2f', f(-1), '     -1.00'],
  ['% .3E', f(-1), '-1.000E+00'], ['% .3e', f(1), ' 1.000e+00'], ['% .3X', f(-1), '-0X1.000P+00'], ['% .3x', f(1), ' 0x1.000p+00'],
  ['%+.3g', f(0), '+0'], ['%+.3g', f(1), '+1'], ['%+.3g', f(-1), '-1'], ['% .3g', f(-1), '-1'], ['% .3g', f(1), ' 1'],
  ['%b', f(1), '4503599627370496p-52'],
]);

cases('fmtTests: Test sharp flag used with floats', [
  ['%#g', f(1e-323), '1.00000e-323'], ['%#g', f(-1), '-1.00000'], ['%#g', f(1.1), '1.10000'], ['%#g', f(123456), '123456.'],
  ['%#g', f(1234567), '1.234567e+06'], ['%#g', f(1230000), '1.23000e+06'], ['%#g', f(1000000), '1.00000e+06'],
  ['%#.0f', f(1), '1.'], ['%#.0e', f(1), '1.e+00'], ['%#.0x', f(1), '0x1.p+00'], ['%#.0g', f(1), '1.'], ['%#.0g', f(1100000), '1.e+06'],
  ['%#.4f', f(1), '1.0000'], ['%#.4e', f(1), '1.0000e+00'], ['%#.4x', f(1), '0x1.0000p+00'], ['%#.4g', f(1), '1.000'],
  ['%#.4g', f(100000), '1.000e+05'], ['%#.4g', f(1.234), '1.234'], ['%#.4g', f(0.1234), '0.1234'], ['%#.4g', f(1.23), '1.230'],
  ['%#.4g', f(0.123), '0.1230'], ['%#.4g', f(1.2), '1.200'], ['%#.4g', f(0.12), '0.1200'], ['%#.4g', f(10.2), '10.20'],
  ['%#.4g', f(0), '0.000'], ['%#.4g', f(0.012), '0.01200'], ['%#.0f', f(123), '123.'], ['%#.0e', f(123), '1.e+02'],
  ['%#.0x', f(123), '0x1.p+07'], ['%#.0g', f(123), '1.e+02'], ['%#.4f', f(123), '123.0000'], ['%#.4e', f(123), '1.2300e+02'],
  ['%#.4x', f(123), '0x1.ec00p+06'], ['%#.4g', f(123), '123.0'], ['%#.4g', f(123000), '1.230e+05'], ['%#9.4g', f(1), '    1.000'],
  // The sharp flag has no effect for binary float format; nor does precision.
  ['%#b', f(1), '4503599627370496p-52'], ['%.4b', f(-1), '-4503599627370496p-52'],
  // Test correct f.intbuf boundary checks.
  ['%.68f', f(1), zeroFill('1.', 68, '')], ['%.68f', f(-1), zeroFill('-1.', 68, '')],
]);

cases('fmtTests: float infinites and NaNs', [
  ['%f', posInf, '+Inf'], ['%.1f', negInf, '-Inf'], ['% f', NaN_, ' NaN'], ['%20f', posInf, '                +Inf'],
  ['% 20F', posInf, '                 Inf'], ['% 20e', negInf, '                -Inf'], ['% 20x', negInf, '                -Inf'],
  ['%+20E', negInf, '                -Inf'], ['%+20X', negInf, '                -Inf'], ['% +20g', negInf, '                -Inf'],
  ['%+-20G', posInf, '+Inf                '], ['%20e', NaN_, '                 NaN'], ['%20x', NaN_, '                 NaN'],
  ['% +20E', NaN_, '                +NaN'], ['% +20X', NaN_, '                +NaN'], ['% -20g', NaN_, ' NaN                '],
  ['%+-20G', NaN_, '+NaN                '],
  // Zero padding does not apply to infinities and NaN.
  ['%+020e', posInf, '                +Inf'], ['%+020x', posInf, '                +Inf'], ['%-020f', negInf, '-Inf                '],
  ['%-020E', NaN_, 'NaN                 '], ['%-020X', NaN_, 'NaN                 '],
]);

cases('fmtTests: old test/fmt_test.go', [
  ['%e', f(1), '1.000000e+00'], ['%e', f(1234.5678e3), '1.234568e+06'], ['%e', f(1234.5678e-8), '1.234568e-05'], ['%e', f(-7), '-7.000000e+00'],
  ['%e', f(-1e-9), '-1.000000e-09'], ['%f', f(1234.5678e3), '1234567.800000'], ['%f', f(1234.5678e-8), '0.000012'], ['%f', f(-7), '-7.000000'],
  ['%f', f(-1e-9), '-0.000000'], ['%g', f(1234.5678e3), '1.2345678e+06'], ['%g', f(1234.5678e-8), '1.2345678e-05'], ['%g', f(-7), '-7'],
  ['%g', f(-1e-9), '-1e-09'], ['%E', f(1), '1.000000E+00'], ['%E', f(1234.5678e3), '1.234568E+06'], ['%E', f(1234.5678e-8), '1.234568E-05'],
  ['%E', f(-7), '-7.000000E+00'], ['%E', f(-1e-9), '-1.000000E-09'], ['%G', f(1234.5678e3), '1.2345678E+06'], ['%G', f(1234.5678e-8), '1.2345678E-05'],
  ['%G', f(-7), '-7'], ['%G', f(-1e-9), '-1E-09'], ['%20.5s', 'qwertyuiop', '               qwert'], ['%.5s', 'qwertyuiop', 'qwert'],
  ['%-20.5s', 'qwertyuiop', 'qwert               '], ['%20c', 0x78, '                   x'], ['%-20c', 0x78, 'x                   '],
  ['%20.6e', f(1.2345e3), '        1.234500e+03'], ['%20.6e', f(1.2345e-3), '        1.234500e-03'], ['%20e', f(1.2345e3), '        1.234500e+03'],
  ['%20e', f(1.2345e-3), '        1.234500e-03'], ['%20.8e', f(1.2345e3), '      1.23450000e+03'], ['%20f', f(1.23456789e3), '         1234.567890'],
  ['%20f', f(1.23456789e-3), '            0.001235'], ['%20f', f(Number('12345678901.23456789')), '  12345678901.234568'], ['%-20f', f(1.23456789e3), '1234.567890         '],
  ['%20.8f', f(1.23456789e3), '       1234.56789000'], ['%20.8f', f(1.23456789e-3), '          0.00123457'], ['%g', f(1.23456789e3), '1234.56789'],
  ['%g', f(1.23456789e-3), '0.00123456789'], ['%g', f(1.23456789e20), '1.23456789e+20'],
]);

cases('fmtTests: slices (islice) and floats with %v', [
  ['%v', ints(1, 2, 3, 4, 5), '[1 2 3 4 5]'], ['%v', ifaces(1, 'hello', f(2.5), undefined), '[1 hello 2.5 <nil>]'], ['%v', f(1.2345678), '1.2345678'],
]);

cases('fmtTests: structs', [
  ['%v', A, '{1 2 a [1 2]}'], ['%+v', A, '{i:1 j:2 s:a x:[1 2]}'],
]);

cases('fmtTests: go syntax', [
  ['%#v', A, 'fmt_test.A{i:1, j:0x2, s:"a", x:[]int{1, 2}}'], ['%#v', MAX_U64, '0xffffffffffffffff'], ['%#v', 1000000000, '1000000000'],
  ['%#v', goMap('map[string]int', 0, [['a', 1]]), 'map[string]int{"a":1}'], ['%#v', typedSlice('[]string', ['a', 'b']), '[]string{"a", "b"}'],
  ['%#v', SI, 'fmt_test.SI{I:interface {}(nil)}'], ['%#v', typedSlice('[]int', [], true), '[]int(nil)'], ['%#v', ints(), '[]int{}'],
  ['%#v', goMap('map[int]uint8', 0, [], true), 'map[int]uint8(nil)'], ['%#v', goMap('map[int]uint8', 0, []), 'map[int]uint8{}'],
  ['%#v', 'foo', '"foo"'], ['%#v', typedSlice('[]int32', [], true), '[]int32(nil)'], ['%#v', f(1.2345678), '1.2345678'],
  // Whole number floats are printed without decimals. See golang/go issue 27634.
  ['%#v', f(1), '1'], ['%#v', f(1000000), '1e+06'],
]);

cases('TestStructPrinter (value and pointer)', [
  ['%v', T(false), '{abc def 123}'], ['%+v', T(false), '{a:abc b:def c:123}'], ['%#v', T(false), 'fmt_test.T{a:"abc", b:"def", c:123}'],
  ['%v', T(true), '&{abc def 123}'], ['%+v', T(true), '&{a:abc b:def c:123}'], ['%#v', T(true), '&fmt_test.T{a:"abc", b:"def", c:123}'],
]);

cases('fmtTests: slices with other formats', [
  ['%#x', ints(1, 2, 15), '[0x1 0x2 0xf]'], ['%x', ints(1, 2, 15), '[1 2 f]'], ['%d', ints(1, 2, 15), '[1 2 15]'],
  ['%q', typedSlice('[]string', ['a', 'b']), '["a" "b"]'],
]);

cases('fmtTests: Same for strings (padding)', [
  ['%2x', '', '  '], ['%#2x', '', '  '], ['% 02x', '', '00'], ['%# 02x', '', '00'], ['%-2x', '', '  '], ['%-02x', '', '  '],
]);

cases('fmtTests: %T, %p and %v of nil', [
  ['%T', 0, 'int'], ['%10T', undefined, '     <nil>'], ['%-10T', undefined, '<nil>     '],
  ['%p', 27, '%!p(int=27)'], ['%p', undefined, '%!p(<nil>)'], ['%#p', undefined, '%!p(<nil>)'],
  ['%v', undefined, '<nil>'], ['%#v', undefined, '<nil>'],
]);

cases('fmtTests: erroneous things', [
  ['', undefined, '%!(EXTRA <nil>)'], ['', 2, '%!(EXTRA int=2)'], ['no args', 'hello', 'no args%!(EXTRA string=hello)'],
  ['%s %', 'hello', 'hello %!(NOVERB)'], ['%s %.2', 'hello', 'hello %!(NOVERB)'],
  ['%017091901790959340919092959340919017929593813360', 0, '%!(NOVERB)%!(EXTRA int=0)'],
  ['%184467440737095516170v', 0, '%!(NOVERB)%!(EXTRA int=0)'],
  // Extra argument errors should format without flags set.
  ['%010.2', '12345', '%!(NOVERB)%!(EXTRA string=12345)'],
]);

cases('fmtTests: Comparison of padding rules with C printf', [
  ['%.2f', f(1), '1.00'], ['%.2f', f(-1), '-1.00'], ['% .2f', f(1), ' 1.00'], ['% .2f', f(-1), '-1.00'], ['%+.2f', f(1), '+1.00'],
  ['%+.2f', f(-1), '-1.00'], ['%7.2f', f(1), '   1.00'], ['%7.2f', f(-1), '  -1.00'], ['% 7.2f', f(1), '   1.00'], ['% 7.2f', f(-1), '  -1.00'],
  ['%+7.2f', f(1), '  +1.00'], ['%+7.2f', f(-1), '  -1.00'], ['% +7.2f', f(1), '  +1.00'], ['% +7.2f', f(-1), '  -1.00'],
  ['%07.2f', f(1), '0001.00'], ['%07.2f', f(-1), '-001.00'], ['% 07.2f', f(1), ' 001.00'], ['% 07.2f', f(-1), '-001.00'],
  ['%+07.2f', f(1), '+001.00'], ['%+07.2f', f(-1), '-001.00'], ['% +07.2f', f(1), '+001.00'], ['% +07.2f', f(-1), '-001.00'],
]);

cases('fmtTests: padding of elements', [
  // Use spaces instead of zero if padding to the right.
  ['%0-5s', 'abc', 'abc  '], ['%-05.1f', f(1), '1.0  '],
  // float and complex formatting should not change the padding width for other elements. See golang/go issue 14642.
  ['%06v', ifaces(f(10), 10), '[000010 000010]'], ['%06v', ifaces(f(-10), 10), '[-00010 000010]'],
  // integer formatting should not alter padding for other elements.
  ['%03.6v', ifaces(1, f(2), 'x'), '[000001 002 00x]'], ['%03.0v', ifaces(0, f(2), 'x'), '[    002 000]'],
  // Incomplete format specification caused crash.
  ['%.', 3, '%!.(int=3)'],
]);

cases('fmtTests: Tests to check that not supported verbs generate an error string', [
  ['%☠', undefined, '%!☠(<nil>)'], ['%☠', 0, '%!☠(int=0)'], ['%☠', 'hello', '%!☠(string=hello)'], ['%☠', f(1.2345678), '%!☠(float64=1.2345678)'],
]);

describe('reorderTests (TestReorder) and the examples of doc.go', () => {
  const reorder: readonly [string, readonly Value[], string][] = [
    ['%[1]d', [1], '1'], ['%[2]d', [2, 1], '1'], ['%[2]d %[1]d', [1, 2], '2 1'], ['%[2]*[1]d', [2, 5], '    2'],
    ['%6.2f', [f(12)], ' 12.00'], ['%[3]*.[2]*[1]f', [f(12), 2, 6], ' 12.00'], ['%[1]*.[2]*[3]f', [6, 2, f(12)], ' 12.00'],
    ['%10f', [f(12)], ' 12.000000'], ['%[1]*[3]f', [10, 99, f(12)], ' 12.000000'], ['%.6f', [f(12)], '12.000000'],
    ['%.[1]*[3]f', [6, 99, f(12)], '12.000000'], ['%6.f', [f(12)], '    12'], ['%[1]*.[3]f', [6, 3, f(12)], '    12'],
    ['%d %d %d %#[1]o %#o %#o', [11, 12, 13], '11 12 13 013 014 015'],
    // Erroneous cases.
    ['%[d', [2, 1], '%!d(BADINDEX)'], ['%]d', [2, 1], '%!](int=2)d%!(EXTRA int=1)'], ['%[]d', [2, 1], '%!d(BADINDEX)'],
    ['%[-3]d', [2, 1], '%!d(BADINDEX)'], ['%[99]d', [2, 1], '%!d(BADINDEX)'], ['%[3]', [2, 1], '%!(NOVERB)'],
    ['%[1].2d', [5, 6], '%!d(BADINDEX)'], ['%[1]2d', [2, 1], '%!d(BADINDEX)'], ['%3.[2]d', [7], '%!d(BADINDEX)'], ['%.[2]d', [7], '%!d(BADINDEX)'],
    ['%d %d %d %#[1]o %#o %#o %#o', [11, 12, 13], '11 12 13 013 014 015 %!o(MISSING)'], ['%[5]d %[2]d %d', [1, 2, 3], '%!d(BADINDEX) 2 3'],
    ['%d %[3]d %d', [1, 2], '1 %!d(BADINDEX) 2'], ['%.[]', [], '%!](BADINDEX)'], ['%.-3d', [42], '%!-(int=42)3d'],
    ['%2147483648d', [42], '%!(NOVERB)%!(EXTRA int=42)'], ['%-2147483648d', [42], '%!(NOVERB)%!(EXTRA int=42)'],
    ['%.2147483648d', [42], '%!(NOVERB)%!(EXTRA int=42)'],
    // doc.go: "Explicit argument indexes" and "Format errors".
    ['%[2]d %[1]d\n', [11, 22], '22 11\n'], ['%d %d %#[1]x %#x', [16, 17], '16 17 0x10 0x11'], ['%d', ['hi'], '%!d(string=hi)'],
    ['hi', ['guys'], 'hi%!(EXTRA string=guys)'], ['hi%d', [], 'hi%!d(MISSING)'], ['%*s', [f(4.5), 'hi'], '%!(BADWIDTH)hi'],
    ['%.*s', [f(4.5), 'hi'], '%!(BADPREC)hi'], ['%*[2]d', [7], '%!d(BADINDEX)'], ['%.[2]d', [7], '%!d(BADINDEX)'],
  ];
  for (const [fmt, args, want] of reorder) it(`Sprintf(${JSON.stringify(fmt)}, …) = ${JSON.stringify(want)}`, () => assert.equal(sprintf(fmt, args), want));
});
