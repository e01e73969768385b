// Every `dssss` command, in the order `dssss help` lists them.

import type { Command } from '../args';
import { admin } from './admin';
import { dev } from './dev';
import { exec } from './exec';
import { get } from './get';
import { history, revert } from './history';
import { login } from './login';
import { ls } from './ls';
import { put } from './put';
import { restore, rm } from './rm';
import { exportCommand, importCommand } from './transfer';

export const COMMANDS: readonly Command[] = [login, get, put, ls, history, revert, rm, restore, exec, exportCommand, importCommand, admin, dev];

export function findCommand(name: string): Command | undefined {
  return COMMANDS.find((c) => c.name === name);
}
