import { Command, CommandRunner, Option, SubCommand } from 'nest-commander';
import { MikroORM } from '@mikro-orm/postgresql';
import { ApiKeysService, ROLES, RequestScopes } from '@closebook/platform';
import { print } from '../output';

@SubCommand({ name: 'create', description: 'Create an API key with a role for an organization' })
export class KeyCreateCommand extends CommandRunner {
  constructor(private readonly keys: ApiKeysService, private readonly orm: MikroORM) {
    super();
  }

  async run(_: string[], opts: { org?: string; role?: string; name?: string; json?: boolean }): Promise<void> {
    if (!opts.org || !opts.role) throw new Error('--org and --role are required');
    const org = opts.org;
    const created = await RequestScopes.run(
      { requestId: `cli:key-create`, principal: { organizationId: org, keyId: null, role: 'system', actor: 'cli' } },
      () => this.orm.em.fork().transactional((tx) => this.keys.create(tx, org, opts.role!, opts.name)),
    );
    print(opts.json, { organization_id: org, key_id: created.id, role: created.role, api_key: created.apiKey }, [
      `${created.role} key ${created.id} created for ${org}`,
      `API key (shown once): ${created.apiKey}`,
    ]);
  }

  @Option({ flags: '--org <id>', description: 'organization id', required: true })
  parseOrg(v: string) {
    return v;
  }

  @Option({ flags: '--role <role>', description: `one of ${ROLES.join(', ')}`, required: true })
  parseRole(v: string) {
    return v;
  }

  @Option({ flags: '--name <name>', description: 'a label for the key' })
  parseName(v: string) {
    return v;
  }

  @Option({ flags: '--json', description: 'print JSON' })
  parseJson() {
    return true;
  }
}

@Command({ name: 'key', description: 'API keys', subCommands: [KeyCreateCommand] })
export class KeyCommand extends CommandRunner {
  async run(): Promise<void> {
    this.command.help();
  }
}
