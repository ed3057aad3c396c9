package embeddedpg

// Exported for the external tests.
const MallocTunables = mallocTunables

var PostgresEnv = postgresEnv
