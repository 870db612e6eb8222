import { parseScenario, type LoadedScenario } from '../scenario/index.js';
import type { ExamRecord } from './exam-store.js';

/**
 * Each exam's scenario, parsed once from the text the exam was created with:
 * later edits of the scenario file never change an exam under way.
 */
export class ExamScenarios {
  private readonly cache = new Map<string, LoadedScenario>();

  of(exam: ExamRecord): LoadedScenario {
    let loaded = this.cache.get(exam.id);
    if (!loaded) {
      loaded = { scenario: parseScenario(exam.scenarioText, exam.scenarioFile), file: exam.scenarioFile, text: exam.scenarioText };
      this.cache.set(exam.id, loaded);
    }
    return loaded;
  }

  /** Keeps the scenario an exam was just created from (already parsed and checked). */
  remember(examId: string, loaded: LoadedScenario): void {
    this.cache.set(examId, loaded);
  }
}
