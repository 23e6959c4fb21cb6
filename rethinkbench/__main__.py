from rethinkbench.cli import main

raise SystemExit(main())
