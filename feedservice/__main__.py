from feedservice.cli import main

raise SystemExit(main())
