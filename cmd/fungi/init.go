package main

import "fmt"

type initCmd struct{}

func (c *initCmd) Run(e *env) error {
	created, err := e.home.Init()
	if err != nil {
		return err
	}
	_, id, err := e.home.Identity()
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(e.stdout, "initialized %s\npeer ID %s\n", e.home.Dir, id)
	} else {
		fmt.Fprintf(e.stdout, "%s is already initialized\npeer ID %s\n", e.home.Dir, id)
	}
	return nil
}
