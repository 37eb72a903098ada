// privilege.cpp — the one INSERT privilege check (see privilege.hpp).
#include "privilege.hpp"

extern "C" {
#include "catalog/pg_class.h"
#include "utils/acl.h"
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

void check_insert_privilege(Relation rel, const int16 *attnums, int natts) {
    if (!has_insert_privilege(RelationGetRelid(rel), GetUserId(), attnums, natts))
        aclcheck_error(ACLCHECK_NO_PRIV, get_relkind_objtype(rel->rd_rel->relkind), RelationGetRelationName(rel));
}

} // namespace pg_ingest
