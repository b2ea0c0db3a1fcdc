import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { README, withCurrentTable } from '../../scripts/readme-topology.js';

describe('README', () => {
  it('When the broker topology is declared in code, then the README’s table is the one it writes (npm run docs:topology)', () => {
    const readme = readFileSync(README, 'utf8');
    expect(withCurrentTable(readme) === readme, 'README.md’s topology table is stale: run npm run docs:topology').to.equal(true);
  });
});
