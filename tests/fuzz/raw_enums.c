/* Out-of-range enum values passed the way a C caller passes them: valid C
   (an enum converts from its compatible integer type), whereas C++ cannot
   even form such a value without undefined behaviour. The header promises
   WORKER_EINVAL for them. */
#include "qtworker.h"

void fz_set_policy(worker_options *o, int policy) { o->policy = (worker_policy)policy; }

long fz_connect(worker *w, int type, worker_callback cb, void *user_data,
                worker_destroy_fn user_data_destroy) {
    return worker_connect(w, (worker_event_type)type, cb, user_data, user_data_destroy);
}
