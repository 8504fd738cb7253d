"""Running a migration, stage by stage: plan its scope, back up, encrypt batch by batch,
verify, roll back, estimate; the runner and the workers that join it."""
