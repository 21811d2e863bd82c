// Pure unit and property tests only (no PostgreSQL or Redis): quick feedback while editing the
// money and rating cores. `npm test` runs everything, these included.
const base = require('./jest.config');
module.exports = {
  ...base,
  testMatch: ['<rootDir>/libs/money/**/*.spec.ts', '<rootDir>/libs/billing/rating/**/*.spec.ts'],
  globalSetup: undefined,
  globalTeardown: undefined,
  setupFiles: [],
};
