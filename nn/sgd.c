#include "sgd.h"

#include <math.h>

void sgd_step(Engine* e, const SGD* opt) {
    e->be->sgd_step(e->param_data, e->param_momentum, e->param_grad, e->num_param_floats, opt->lr,
                    opt->momentum, opt->weight_decay, opt->nesterov);
}

float schedule_lr(const Schedule* s, long step) {
    if (step < s->warmup_steps) return s->base_lr * (float)(step + 1) / (float)s->warmup_steps;
    long t = step - s->warmup_steps;
    long span = s->total_steps - s->warmup_steps;
    switch (s->kind) {
    case SCHEDULE_CONSTANT: return s->base_lr;
    case SCHEDULE_STEP: return s->base_lr * powf(s->gamma, (float)(t / (s->step_size > 0 ? s->step_size : 1)));
    case SCHEDULE_COSINE:
        if (span <= 0 || t >= span) return 0.0f;
        return (float)(s->base_lr * 0.5 * (1.0 + cos(M_PI * (double)t / (double)span)));
    }
    return s->base_lr;
}

const char* schedule_name(ScheduleKind kind) {
    switch (kind) {
    case SCHEDULE_CONSTANT: return "constant";
    case SCHEDULE_COSINE: return "cosine";
    case SCHEDULE_STEP: return "step";
    }
    return "?";
}
