// The role a witn function was called by. witn.settle() and the other operator functions are
// SECURITY DEFINER, so inside them current_user is witn's owner; the caller is the role in effect
// outside every SECURITY DEFINER function: the session's user, or the role it SET ROLE to (as
// PostgREST does for each request, and pg_cron for a job's user).
#include "pg/postgres.hpp"

extern "C" {
#include "miscadmin.h"
}

WITN_FUNCTION(witn_calling_role) {
    (void)fcinfo;
    return witn::pg::pg([] { return ObjectIdGetDatum(GetOuterUserId()); });
}
