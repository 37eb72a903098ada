// privilege.cpp — the one INSERT privilege check (see privilege.hpp).
#include "privilege.hpp"

extern "C" {
#include "catalog/pg_class.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
}

namespace pg_ingest {

bool has_insert_privilege(Oid reloid, Oid roleid, const int16 *attnums, int natts) {
    if (pg_class_aclcheck(reloid, roleid, ACL_INSERT) == ACLCHECK_OK)
        return true;
    if (natts == 0)
        return pg_attribute_aclcheck_all(reloid, roleid, ACL_INSERT, ACLMASK_ALL) == ACLCHECK_OK;
    for (int i = 0; i < natts; i++)
        if (pg_attribute_aclcheck(reloid, attnums[i], roleid, ACL_INSERT) != ACLCHECK_OK)
            return false;
    return true;
}

void check_insert_privilege(Oid reloid, const int16 *attnums, int natts, bool any_column) {
    Oid userid = GetUserId();
    Oid nsp = get_rel_namespace(reloid);
    if (!OidIsValid(nsp))
        ereport(ERROR,
                (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("relation with OID %u does not exist", reloid)));
    AclResult r = pg_namespace_aclcheck(nsp, userid, ACL_USAGE);
    if (r != ACLCHECK_OK)
        aclcheck_error(r, OBJECT_SCHEMA, get_namespace_name(nsp));
    bool ok = any_column ? (pg_class_aclcheck(reloid, userid, ACL_INSERT) == ACLCHECK_OK ||
                            pg_attribute_aclcheck_all(reloid, userid, ACL_INSERT, ACLMASK_ANY) == ACLCHECK_OK)
                         : has_insert_privilege(reloid, userid, attnums, natts);
    if (!ok)
        aclcheck_error(ACLCHECK_NO_PRIV, get_relkind_objtype(get_rel_relkind(reloid)), get_rel_name(reloid));
}

} // namespace pg_ingest
