/**
 * The standard chart of accounts, created per organization and currency on first use. Codes are
 * stable (posting rules and reports name accounts by code); names are for people.
 */

export const ACCOUNT_TYPES = ['asset', 'liability', 'equity', 'revenue', 'contra_revenue', 'expense'] as const;
export type AccountType = (typeof ACCOUNT_TYPES)[number];

export const NORMAL_BALANCES = ['debit', 'credit'] as const;
export type NormalBalance = (typeof NORMAL_BALANCES)[number];

/** Account codes by role. Use these constants, never literal codes, in posting rules. */
export const ACCOUNTS = {
  CASH: '1000',
  ACCOUNTS_RECEIVABLE: '1100',
  UNBILLED_RECEIVABLES: '1150',
  CUSTOMER_CREDITS: '2100',
  DEFERRED_REVENUE: '2200',
  TAX_PAYABLE: '2300',
  REVENUE_SUBSCRIPTION: '4000',
  REVENUE_USAGE: '4100',
  REVENUE_SEATS_ADDONS: '4200',
  REVENUE_SERVICES: '4300',
  CONTRA_REVENUE_CREDITS: '4900',
} as const;
export type AccountCode = (typeof ACCOUNTS)[keyof typeof ACCOUNTS];

export interface AccountDefinition {
  code: AccountCode;
  name: string;
  type: AccountType;
  normalBalance: NormalBalance;
  /** A control account whose lines must name a party (`party_id`): its sub-ledger sums to it. */
  requiresParty: boolean;
  description: string;
}

export const STANDARD_CHART: readonly AccountDefinition[] = Object.freeze([
  { code: ACCOUNTS.CASH, name: 'Cash', type: 'asset', normalBalance: 'debit', requiresParty: false, description: 'Payments received' },
  {
    code: ACCOUNTS.ACCOUNTS_RECEIVABLE,
    name: 'Accounts receivable',
    type: 'asset',
    normalBalance: 'debit',
    requiresParty: true,
    description: 'Control account of the per-customer sub-ledger: every line names its customer (party_id)',
  },
  {
    code: ACCOUNTS.UNBILLED_RECEIVABLES,
    name: 'Unbilled receivables',
    type: 'asset',
    normalBalance: 'debit',
    requiresParty: false,
    description: 'Usage earned in a month but not yet invoiced (month-end accruals, reversed when the invoice posts)',
  },
  {
    code: ACCOUNTS.CUSTOMER_CREDITS,
    name: 'Customer credits',
    type: 'liability',
    normalBalance: 'credit',
    requiresParty: false,
    description: 'Credit balances owed to customers (credit notes not yet applied, overpayments)',
  },
  {
    code: ACCOUNTS.DEFERRED_REVENUE,
    name: 'Deferred revenue',
    type: 'liability',
    normalBalance: 'credit',
    requiresParty: false,
    description: 'Fees billed in advance, recognized month by month over their service period',
  },
  { code: ACCOUNTS.TAX_PAYABLE, name: 'Tax payable', type: 'liability', normalBalance: 'credit', requiresParty: false, description: 'Tax invoiced, owed to authorities' },
  {
    code: ACCOUNTS.REVENUE_SUBSCRIPTION,
    name: 'Revenue — subscription',
    type: 'revenue',
    normalBalance: 'credit',
    requiresParty: false,
    description: 'Recognized plan fees',
  },
  { code: ACCOUNTS.REVENUE_USAGE, name: 'Revenue — usage', type: 'revenue', normalBalance: 'credit', requiresParty: false, description: 'Metered usage and overage' },
  {
    code: ACCOUNTS.REVENUE_SEATS_ADDONS,
    name: 'Revenue — seats and add-ons',
    type: 'revenue',
    normalBalance: 'credit',
    requiresParty: false,
    description: 'Recognized seat and add-on fees',
  },
  {
    code: ACCOUNTS.REVENUE_SERVICES,
    name: 'Revenue — services (on-demand)',
    type: 'revenue',
    normalBalance: 'credit',
    requiresParty: false,
    description: 'On-demand charges (consulting hours, incidents)',
  },
  {
    code: ACCOUNTS.CONTRA_REVENUE_CREDITS,
    name: 'Contra-revenue — credits',
    type: 'contra_revenue',
    normalBalance: 'debit',
    requiresParty: false,
    description: 'Credits granted against revenue (credit notes, proration credits)',
  },
] satisfies AccountDefinition[]);

const BY_CODE = new Map<string, AccountDefinition>(STANDARD_CHART.map((a) => [a.code, a]));

export function accountDefinition(code: string): AccountDefinition | undefined {
  return BY_CODE.get(code);
}

export function isAccountCode(code: unknown): code is AccountCode {
  return typeof code === 'string' && BY_CODE.has(code);
}
