import { Command, CommandRunner, Option, SubCommand } from 'nest-commander';
import { MikroORM } from '@mikro-orm/postgresql';
import { OrganizationsService } from '@closebook/platform';
import { print } from '../output';

@SubCommand({ name: 'create', description: 'Create an organization and its first admin API key' })
export class OrgCreateCommand extends CommandRunner {
  constructor(private readonly orgs: OrganizationsService, private readonly orm: MikroORM) {
    super();
  }

  async run(_: string[], opts: { name?: string; json?: boolean }): Promise<void> {
    if (!opts.name) throw new Error('--name is required');
    const { organization, adminKey } = await this.orgs.createWithAdminKey(this.orm.em.fork(), opts.name);
    print(opts.json, { organization_id: organization.id, api_key: adminKey.apiKey }, [
      `Organization ${organization.name} created: ${organization.id}`,
      `Admin API key (shown once): ${adminKey.apiKey}`,
    ]);
  }

  @Option({ flags: '--name <name>', description: 'organization name', required: true })
  parseName(v: string) {
    return v;
  }

  @Option({ flags: '--json', description: 'print JSON' })
  parseJson() {
    return true;
  }
}

@Command({ name: 'org', description: 'Organizations', subCommands: [OrgCreateCommand] })
export class OrgCommand extends CommandRunner {
  async run(): Promise<void> {
    this.command.help();
  }
}
