"""Program insights: reports for program managers, built only from the platform's event stream."""
