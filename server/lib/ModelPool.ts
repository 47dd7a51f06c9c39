import { FlowEstimator, type DeviceName } from 'torch-optical-flow';
import { ServiceError } from './ServiceError';
import type { ServedModel } from './FlowServerOptions';

/** A loaded model as the server offers it. */
export interface PooledModel {
  /** The name requests use: the model's name as configured. */
  model: string;
  /** The weights as configured (undefined: the model's recommended ones). */
  requestedWeights?: string;
  estimator: FlowEstimator;
  /** Running mean of one inference's seconds (for Retry-After). */
  meanSeconds: number;
}

/** The models a server loaded at start, chosen per request by model name and weights. */
export class ModelPool {
  readonly models: readonly PooledModel[];

  private constructor(models: PooledModel[]) {
    this.models = models;
  }

  /** Loads every model (one after the other: each load takes the CPU); on any failure the loaded ones are freed. */
  static async load(specs: readonly ServedModel[], options: { device: DeviceName; threads?: number; queueLimit: number }): Promise<ModelPool> {
    const loaded: PooledModel[] = [];
    try {
      for (const spec of specs) {
        const estimator = await FlowEstimator.load({
          model: spec.model, weights: spec.weights, device: options.device, threads: options.threads, queueLimit: options.queueLimit,
        });
        loaded.push({ model: spec.model, requestedWeights: spec.weights, estimator, meanSeconds: 0 });
      }
    } catch (error) {
      await Promise.all(loaded.map((m) => m.estimator.dispose()));
      throw error;
    }
    return new ModelPool(loaded);
  }

  /** The first model named `model` (the default model when undefined) whose weights match `weights`, if given. */
  find(model: string | undefined, weights: string | undefined): PooledModel {
    const name = model ?? this.models[0].model;
    const candidates = this.models.filter((m) => m.model === name);
    const found = weights === undefined ? candidates[0]
      : candidates.find((m) => m.requestedWeights === weights || m.estimator.info.weights.name === weights);
    if (!found) {
      const served = this.models.map((m) => `${m.model} (${m.estimator.info.weights.name})`).join(', ');
      const what = weights === undefined ? `model '${name}'` : `model '${name}' with weights '${weights}'`;
      throw new ServiceError('ERR_UNKNOWN_MODEL', `this server does not serve ${what}; it serves ${served}`);
    }
    return found;
  }

  /** Records an inference's duration in the model's running mean. */
  static record(model: PooledModel, seconds: number): void {
    model.meanSeconds = model.meanSeconds === 0 ? seconds : 0.8 * model.meanSeconds + 0.2 * seconds;
  }

  /** Whole seconds until a full model's queue has likely room again. */
  static retryAfter(model: PooledModel): number {
    return Math.max(1, Math.ceil(model.meanSeconds * Math.max(1, model.estimator.pending)));
  }

  async dispose(): Promise<void> {
    await Promise.all(this.models.map((m) => m.estimator.dispose()));
  }
}
