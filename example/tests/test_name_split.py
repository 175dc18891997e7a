"""A data-migration test written with the migration_runner fixture."""


def test_names_are_split_and_joined_back(migration_runner):
    migration_runner.upgrade("3c4d5e6f7a8b")  # the revision before the data migration
    migration_runner.insert("users", [{"id": 1, "name": "Ada Lovelace", "email": "ada@example.com"}])

    migration_runner.upgrade("+1")
    assert migration_runner.execute("SELECT first_name, last_name FROM users") == [("Ada", "Lovelace")]

    migration_runner.downgrade("-1")
    assert migration_runner.execute("SELECT name FROM users") == [("Ada Lovelace",)]
