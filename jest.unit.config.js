// Pure unit and property tests only (no PostgreSQL or Redis): quick feedback while editing the
// money and rating cores. `npm test` runs everything, these included.
const base = require('./jest.config');
module.exports = {
  ...base,
  testMatch: ['<rootDir>/libs/money/**/*.spec.ts', '<rootDir>/libs/billing/rating/**/*.spec.ts', '<rootDir>/libs/ledger/**/*.spec.ts', '<rootDir>/libs/billing/invoicing/**/*.spec.ts'],
  globalSetup: undefined,
  globalTeardown: undefined,
  setupFiles: [],
};
