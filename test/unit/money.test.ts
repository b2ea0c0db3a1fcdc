import { expect } from 'chai';
import { MAX_AMOUNT_MINOR, formatMinor, parseAmount } from '../../shared/domain/money.js';

const show = (input: number | string) => (typeof input === 'string' ? JSON.stringify(input) : String(input));

describe('money', () => {
  describe('parseAmount', () => {
    const exact: [number | string, number][] = [
      [0.1, 10],
      [0.2, 20],
      [0.01, 1],
      [150.75, 15075],
      [1000000.01, 100000001],
      ['150.75', 15075],
      ['0.10', 10],
      ['7', 700],
      [7, 700],
      [19.99, 1999],
      [0.29, 29],
      [1.005e2, 10050],
    ];
    for (const [input, minor] of exact) {
      it(`When the amount is ${show(input)}, then it is exactly ${minor} minor units`, () => {
        expect(parseAmount(input)).to.deep.equal({ ok: true, minor });
      });
    }

    const refused: [number | string, RegExp][] = [
      [0, /greater than 0/],
      ['0.00', /greater than 0/],
      [-5, /greater than 0/],
      ['-5', /greater than 0/],
      [1.001, /at most 2 decimal/],
      ['1.001', /at most 2 decimal/],
      [1e-7, /at most 2 decimal/],
      [Number.NaN, /finite/],
      [Number.POSITIVE_INFINITY, /finite/],
      ['abc', /decimal number/],
      ['', /decimal number/],
      [' 5', /decimal number/],
      ['1e3', /decimal number/],
      ['0x10', /decimal number/],
      ['01.5', /decimal number/],
      [1e21, /decimal number/],
      ['100000000000.01', /at most/],
      ['9999999999999999999', /at most/],
    ];
    for (const [input, message] of refused) {
      it(`When the amount is ${show(input)}, then it is refused`, () => {
        const result = parseAmount(input);
        expect(result.ok).to.equal(false);
        expect(result.ok === false && result.message).to.match(message);
      });
    }

    it('When the amount is the maximum, then it is accepted exactly', () => {
      expect(parseAmount('100000000000.00')).to.deep.equal({ ok: true, minor: MAX_AMOUNT_MINOR });
    });
  });

  describe('formatMinor', () => {
    it('When minor units are formatted, then they read as a two-decimal string', () => {
      expect(formatMinor(15075)).to.equal('150.75');
      expect(formatMinor(10)).to.equal('0.10');
      expect(formatMinor(1)).to.equal('0.01');
      expect(formatMinor(0)).to.equal('0.00');
      expect(formatMinor(100000001)).to.equal('1000000.01');
      expect(formatMinor(-250)).to.equal('-2.50');
    });
  });
});
