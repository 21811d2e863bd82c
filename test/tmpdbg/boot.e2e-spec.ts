import { NestFactory } from '@nestjs/core';
import { WorkerModule } from '../../apps/worker/src/worker.module';
it('boots', async () => {
  try {
    const w = await NestFactory.createApplicationContext(WorkerModule, { abortOnError: false, logger: ['error'] });
    await w.init();
    await w.close();
  } catch (e) { console.log('ERR', e); throw e; }
});
